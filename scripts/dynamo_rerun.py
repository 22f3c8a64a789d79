"""Feed Dynamo 1.6.1's own planner the inputs it recorded, tick by tick, and write what it decides now.

Run with the peer venv's Python (``../shared/reference/dynamo-ticks/install_dynamo_peer.sh``), not llmreplay's:

    $VENV/bin/python scripts/dynamo_rerun.py REPORT.json.gz agg|disagg OUT.json.gz

It bootstraps the planner exactly as Dynamo's replay does (``dynamo.replay.planner.prepare_planner_replay``, the
reference README's engine args and planner config), then calls its tick engine with each recorded tick's
``scheduled_tick`` and ``input`` (never ``effects``). OUT holds, per tick, ``scale_to`` and the diagnostics
``llmreplay parity`` compares. Why it exists: the compiled forward-pass regression keeps its samples in a Rust
``HashMap`` with a random seed (aisimulate ``fpm/samples.rs``), so Dynamo does not reproduce its own recorded
diagnostics from the recorded inputs; this file is the reference for what Dynamo's code decides on them
(``tests/planner/dynamo/test_parity.py``, docs/validation.md).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import sys
from pathlib import Path

import msgspec
from dynamo.common.forward_pass_metrics import ForwardPassMetrics
from dynamo.planner.core.types import FpmObservations, ScheduledTick, TickInput, TrafficObservation, WorkerCounts
from dynamo.replay.planner import prepare_planner_replay

ENGINE = {"backend": "vllm", "system": "h200_sxm", "model": "meta-llama/Meta-Llama-3.1-8B", "tp": 1}
KEYS = ("estimated_ttft_ms", "estimated_itl_ms", "predicted_num_req", "predicted_isl", "predicted_osl",
        "predicted_kv_hit_rate", "engine_rps_prefill", "engine_rps_decode", "throughput_lower_bound_prefill",
        "throughput_lower_bound_decode", "load_decision_reason", "throughput_decision_reason",
        "load_decision_reason_prefill", "load_decision_reason_decode", "throughput_decision_reason_prefill",
        "throughput_decision_reason_decode")


def engine_args(worker_type: str) -> dict[str, object]:
    """The reference runs' engine args in Dynamo 1.6.1's nested launch form (as replay_cli.py builds them)."""
    ais = {**ENGINE, "worker_type": worker_type}
    return {"engine": {"worker_type": worker_type, "backend": "vllm",
                       "timing_model": {"type": "external", "provider": "ais", "config": ais}}}


def planner_config(mode: str) -> str:
    return json.dumps({"mode": mode, "optimization_target": "sla", "ttft": 2500, "itl": 50,
                       "enable_throughput_scaling": True, "enable_load_scaling": True,
                       "pre_deployment_sweeping_mode": "rapid", "throughput_adjustment_interval": 60,
                       "load_adjustment_interval": 5, "prefill_engine_num_gpu": 1, "decode_engine_num_gpu": 1,
                       "load_predictor": "constant", "scheduling": {"tick_max_duration_seconds": 3600}})


def fpms(entries: list[dict[str, object]] | None) -> dict[tuple[str, int], ForwardPassMetrics] | None:
    if not entries:
        return None
    return {(str(e["worker_id"]), int(e["dp_rank"])): msgspec.convert(e["metrics"], ForwardPassMetrics)  # type: ignore[call-overload]
            for e in entries}


def tick_input(recorded: dict[str, object]) -> TickInput:
    i = recorded["input"]
    fo, t, wc = i["fpm_observations"], i["traffic"], i["worker_counts"]  # type: ignore[index]
    return TickInput(now_s=i["now_s"], traffic=None if t is None else TrafficObservation(**t),  # type: ignore[index]
                     worker_counts=None if wc is None else WorkerCounts(**wc),
                     fpm_observations=None if fo is None else FpmObservations(prefill=fpms(fo["prefill"]),
                                                                              decode=fpms(fo["decode"])))


def main(report_path: str, mode: str, out_path: str) -> None:
    logging.disable(logging.WARNING)
    if mode == "agg":
        adapter = prepare_planner_replay(engine_args("aggregated"), None, None, planner_config(mode))
    else:
        adapter = prepare_planner_replay(None, engine_args("prefill"), engine_args("decode"), planner_config(mode))
    adapter.start()
    ticks = json.loads(gzip.decompress(Path(report_path).read_bytes()))["planner"]["ticks"]
    out = []
    for recorded in ticks:
        effects = adapter._run_sync(adapter._engine.tick(ScheduledTick(**recorded["scheduled_tick"]),
                                                         tick_input(recorded)))
        diag = dataclasses.asdict(effects.diagnostics)
        scale = None if effects.scale_to is None else {"num_prefill": effects.scale_to.num_prefill,
                                                       "num_decode": effects.scale_to.num_decode}
        out.append({"ordinal": recorded["ordinal"], "scale_to": scale, "diagnostics": {k: diag.get(k) for k in KEYS}})
    adapter.close()
    meta = {"source": report_path, "mode": mode, "bootstrap": adapter._bootstrap_metadata,
            "producer": "scripts/dynamo_rerun.py, ai-dynamo 1.6.1 peer venv"}
    with gzip.open(out_path, "wt") as f:
        json.dump({"metadata": meta, "ticks": out}, f, separators=(",", ":"))


if __name__ == "__main__":
    main(*sys.argv[1:4])
