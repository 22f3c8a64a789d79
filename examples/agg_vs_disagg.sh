#!/usr/bin/env bash
# Agg vs disagg with equal GPUs, on a long-prompt/short-output trace and a short-prompt/long-output one.
# Usage: examples/agg_vs_disagg.sh [OUT_DIR]   (needs the shared traces next to the repository)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
traces=${TRACES:-$here/../../shared/traces}
out=${1:-agg_vs_disagg}
mkdir -p "$out"
engine='{"gpu":"h200_sxm","model":"nvidia/Llama-3.1-8B-Instruct-FP8","tp":1}'
sla=(--sla-ttft-ms 2000 --sla-itl-ms 30)

run() {  # name trace extra-args...
  local name=$1 trace=$2; shift 2
  llmreplay run "$trace" "${sla[@]}" --quiet --report-json "$out/$name.json" "$@" > /dev/null
}

# long ISL (12k mean), short-ish OSL (343): the Mooncake conversation trace, 4 GPUs
moon=$traces/mooncake_fast25_conversation_trace.jsonl
run moon_agg4     "$moon" --num-workers 4 --extra-engine-args "$engine"
run moon_2p2d     "$moon" --num-prefill-workers 2 --num-decode-workers 2 --prefill-engine-args "$engine" --decode-engine-args "$engine"
run moon_3p1d     "$moon" --num-prefill-workers 3 --num-decode-workers 1 --prefill-engine-args "$engine" --decode-engine-args "$engine"
llmreplay compare "$out/moon_agg4.json" "$out/moon_2p2d.json" "$out/moon_3p1d.json"

# short ISL (1.2k), longer OSL (211): Azure conversation trace at 8x its rate, 2 GPUs
azure=$traces/azure_llm_2023_conv.csv
run azure_agg2 "$azure" --arrival-speedup-ratio 8 --num-workers 2 --extra-engine-args "$engine"
run azure_1p1d "$azure" --arrival-speedup-ratio 8 --num-prefill-workers 1 --num-decode-workers 1 --prefill-engine-args "$engine" --decode-engine-args "$engine"
llmreplay compare "$out/azure_agg2.json" "$out/azure_1p1d.json"
