"""Closed-loop parity with Dynamo 1.6.1 (docs/validation.md): the conversation hour replayed with
``policy: dynamo`` and engine args aligned with Dynamo's mocker, replica timelines compared with the shared
reference runs' ``scaling_events``.

Aligned: Llama-3.1-8B BF16 on H200 timed by AIConfigurator (``perf_model: aic``; the bootstrap FPMs are
bit-identical to Dynamo's), the mocker's KV cache (13,792 blocks of 64 tokens), mixed passes timed as the mocker
times them (``mixed_step: sequential``), no KV hand-off time in disagg (the mocker has none without a
``kv_transfer_bandwidth``), a chunk's blocks cached as it is scheduled, round robin (the reference runs'
router), the same planner config, bootstrap granularity 8. Dynamo clamps a
request's ISL to its hash blocks × the trace block size; every request of this trace already satisfies it
(checked below), so no clamping is needed. The bars are the issue's; docs/validation.md states what is met.

Run: ``pytest -m benchmark benchmarks/test_bench_dynamo_closed_loop.py -s``.
"""

from __future__ import annotations

import gzip
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from timelines import same_share, timeline

from llmreplay.config import build_run_config
from llmreplay.runner import run

pytestmark = pytest.mark.benchmark

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TRACE = SHARED / "traces" / "mooncake_fast25_conversation_trace.jsonl"
REFERENCE = SHARED / "reference" / "dynamo-ticks"
#: the mocker's KV cache for this model and GPU (13,792 blocks of 64 tokens: AISimulate's memory model, which
#: Dynamo's normalised engine config shows; our own estimate is 1.1 % larger)
#: mixed steps timed as the mocker times them (prefill batch, then decode batch); no KV hand-off time (the
#: reference runs set no ``kv_transfer_bandwidth``, so the mocker moves KV in zero time; 1e6 GB/s here)
#: a prompt's blocks reusable from the step that schedules them (the mocker: a new worker's second request reuses
#: the first's 512-token prefix at once), and evicted head first once freed (the mocker, as its reuse shows)
ENGINE = {"aic_backend": "vllm", "aic_system": "h200_sxm", "aic_model_path": "meta-llama/Meta-Llama-3.1-8B",
          "aic_tp_size": 1, "perf_model": {"kind": "aic", "mixed_step": "sequential"}, "block_size": 64,
          "num_gpu_blocks": 13792, "kv_transfer_bandwidth": 1e6, "prefix_cache_on_schedule": True,
          "evict_prompt_head_first": True, "admit_whole_prompt": True}
TRACE_BLOCK = 512


def planner(mode: str) -> dict[str, Any]:
    return {"policy": "dynamo", "mode": mode, "optimization_target": "sla", "ttft": 2500, "itl": 50,
            "enable_throughput_scaling": True, "enable_load_scaling": True, "pre_deployment_sweeping_mode": "rapid",
            "throughput_adjustment_interval": 60, "load_adjustment_interval": 5, "prefill_engine_num_gpu": 1,
            "decode_engine_num_gpu": 1, "load_predictor": "constant",
            "scheduling": {"tick_max_duration_seconds": 3600}}


def run_config(mode: str, engine: dict[str, Any] | None = None) -> dict[str, Any]:
    """The reference runs' set-up as an llmreplay run config. Round robin as in the reference runs (Dynamo's
    replay default; ours would pick the KV router for a trace with hashes)."""
    engine = ENGINE if engine is None else engine
    cfg: dict[str, Any] = {"trace": str(TRACE), "trace_block_size": TRACE_BLOCK, "planner_config": planner(mode),
                           "sla_ttft_ms": 2500, "sla_itl_ms": 50, "router": "round_robin"}
    if mode == "agg":
        cfg.update(num_workers=2, extra_engine_args=engine)
    else:
        cfg.update(num_prefill_workers=1, num_decode_workers=1, prefill_engine_args=engine, decode_engine_args=engine)
    return cfg


def compare(mode: str) -> dict[str, Any]:
    ref = json.loads(gzip.decompress((REFERENCE / f"conv_{mode}.report.json.gz").read_bytes()))
    horizon = max(t["at_ms"] for t in ref["planner"]["ticks"]) / 1000
    starts = {"agg": 2} if mode == "agg" else {"prefill": 1, "decode": 1}
    ours = run(build_run_config(run_config(mode))).report
    rows: dict[str, Any] = {"gpu_hours": (ours["cost"]["gpu_hours"], ref["summary"]["gpu_hours"])}
    for comp, start in starts.items():
        theirs = [(e["at_s"], e["to_count"]) for e in ref["planner"]["scaling_events"] if e["component"] == comp]
        mine = [(e["t_s"], e["to"]) for e in ours["planner"]["events"] if e["component"] == comp]
        a, b = timeline(start, mine, horizon), timeline(start, theirs, horizon)
        ups = (sum(to > n for (_, to), n in zip(mine, [start] + [to for _, to in mine], strict=False)),
               sum(to > n for (_, to), n in zip(theirs, [start] + [to for _, to in theirs], strict=False)))
        rows[comp] = {"changes": (len(mine), len(theirs)), "scale_ups": ups,
                      "same_count_share": same_share(a, b, horizon)}
    # the load loop's estimate at the ticks (a shorter queue shows here first)
    est = ([t["est_ttft_ms"] for t in ours["planner"]["ticks"] if t.get("est_ttft_ms") is not None],
           [t["effects"]["diagnostics"]["estimated_ttft_ms"] for t in ref["planner"]["ticks"]
            if t["effects"]["diagnostics"].get("estimated_ttft_ms") is not None])
    rows["est_ttft_median_ms"] = tuple(round(statistics.median(e), 1) if e else None for e in est)
    return rows


def test_trace_needs_no_isl_clamp() -> None:
    for line in TRACE.read_text().splitlines():
        d = json.loads(line)
        assert d["input_length"] <= len(d.get("hash_ids") or []) * TRACE_BLOCK or not d.get("hash_ids")


@pytest.mark.parametrize("mode", ["agg", "disagg"])
def test_closed_loop_timeline_against_dynamo(mode: str) -> None:
    if not (REFERENCE / f"conv_{mode}.report.json.gz").exists() or not TRACE.exists():
        pytest.skip("shared reference runs not found")
    rows = compare(mode)
    print(f"\n{mode}: {json.dumps(rows)}")
    ours_h, theirs_h = rows["gpu_hours"]
    comps = [c for c in rows if c in ("agg", "prefill", "decode")]
    # the bars of issue #11; see docs/validation.md for the measured values and what still differs
    for c in comps:
        mine, theirs = rows[c]["changes"]
        if theirs:
            assert abs(mine - theirs) <= 0.2 * theirs, (c, mine, theirs)
            assert rows[c]["same_count_share"] >= 0.8, (c, rows[c])
    assert abs(ours_h - theirs_h) <= 0.05 * theirs_h, (ours_h, theirs_h)
