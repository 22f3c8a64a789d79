"""Compare, tick by tick, what Dynamo's planner observed in its closed-loop replay with what our Dynamo policy
observes in ours (docs/validation.md, closed-loop parity).

    PYTHONPATH=src python scripts/dynamo_closed_loop_ticks.py REFERENCE.json.gz OUT.json [--until 735] [--mode agg]

Runs the closed-loop benchmark's config (``benchmarks/test_bench_dynamo_closed_loop.py``) with the policy's
tick inputs recorded, and writes, per tick up to ``--until`` seconds: both sides' traffic, worker counts and
per-worker FPMs (pass composition, tokens, queue, wall time). It prints a summary: on how many ticks both sides
have the same workers, the same FPMs and the same traffic, the first tick where the decisions differ, and the
mean of each FPM field per side.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from test_bench_dynamo_closed_loop import ENGINE, TRACE, TRACE_BLOCK, planner

from llmreplay.config import build_run_config
from llmreplay.planner.dynamo import policy as policy_mod
from llmreplay.runner import run

FIELDS = ("wall_time", "num_prefill_requests", "sum_prefill_tokens", "sum_prefill_kv_tokens", "num_decode_requests",
          "sum_decode_kv_tokens", "q_num_prefill_requests", "q_sum_prefill_tokens", "q_num_decode_requests",
          "q_sum_decode_kv_tokens")


def flat_ours(fpm: Any) -> dict[str, Any]:
    d = asdict(fpm)
    out = {"worker_id": d["worker_id"], "wall_time": d["wall_time"], **d["scheduled"]}
    out.update({f"q_{k}": v for k, v in d["queued"].items()})
    return out


def flat_theirs(obs: dict[str, Any]) -> dict[str, Any]:
    m = obs["metrics"]
    out = {"worker_id": str(obs["worker_id"]), "wall_time": m["wall_time"], **m["scheduled_requests"]}
    out.update({f"q_{k}": v for k, v in m["queued_requests"].items()})
    return out


def record_ours(mode: str, until: float) -> list[dict[str, Any]]:
    ticks: list[dict[str, Any]] = []
    orig = policy_mod.DynamoPolicy.tick

    def tick(self: Any, sched: Any, inp: Any) -> Any:
        eff = orig(self, sched, inp)
        if inp.now_s <= until:
            fpms = sorted((flat_ours(f) for f in (inp.fpm_decode or {}).values()), key=lambda f: int(f["worker_id"]))
            ticks.append({"t": inp.now_s, "traffic": asdict(inp.traffic) if inp.traffic else None,
                          "counts": asdict(inp.worker_counts) if inp.worker_counts else None, "fpm": fpms,
                          "scale_to": asdict(eff.scale_to) if eff.scale_to else None,
                          "est_ttft": eff.diagnostics.estimated_ttft_ms, "est_itl": eff.diagnostics.estimated_itl_ms,
                          "reason": eff.diagnostics.load_decision_reason})
        return eff

    policy_mod.DynamoPolicy.tick = tick  # type: ignore[method-assign]
    try:
        cfg: dict[str, Any] = {"trace": str(TRACE), "trace_block_size": TRACE_BLOCK, "router": "round_robin",
                               "planner_config": planner(mode),
                               "sla_ttft_ms": 2500, "sla_itl_ms": 50, "max_sim_time_seconds": until + 1}
        if mode == "agg":
            cfg.update(num_workers=2, extra_engine_args=ENGINE)
        else:
            cfg.update(num_prefill_workers=1, num_decode_workers=1, prefill_engine_args=ENGINE,
                       decode_engine_args=ENGINE)
        run(build_run_config(cfg))
    finally:
        policy_mod.DynamoPolicy.tick = orig  # type: ignore[method-assign]
    return ticks


def record_theirs(path: Path, until: float) -> list[dict[str, Any]]:
    ref = json.loads(gzip.decompress(path.read_bytes()))
    out = []
    for t in ref["planner"]["ticks"]:
        inp = t["input"]
        if inp["now_s"] > until:
            break
        obs = (inp.get("fpm_observations") or {}).get("decode") or []
        diag = t["effects"]["diagnostics"]
        out.append({"t": inp["now_s"], "traffic": inp["traffic"], "counts": inp["worker_counts"],
                    "fpm": [flat_theirs(o) for o in obs], "scale_to": t["effects"]["scale_to"],
                    "est_ttft": diag["estimated_ttft_ms"], "est_itl": diag["estimated_itl_ms"],
                    "reason": diag["load_decision_reason"]})
    return out


def summary(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per tick: the same active workers, the same FPM per worker (composition and queue exact, pass time
    within 0.1 ms), the same traffic; the first tick where the decisions differ; per-field means."""
    by_t = {round(t["t"], 3): t for t in theirs}
    cols: dict[str, tuple[list[float], list[float]]] = {f: ([], []) for f in FIELDS}
    same_workers = same_fpms = same_traffic = compared = 0
    first_decision_diff = None
    for o in ours:
        th = by_t.get(round(o["t"], 3))
        if th is None:
            continue
        compared += 1
        a = {f["worker_id"]: f for f in o["fpm"]}
        b = {f["worker_id"]: f for f in th["fpm"]}
        if set(a) == set(b):
            same_workers += 1
            same_fpms += all(all(a[w][f] == b[w][f] for f in FIELDS[1:])
                             and abs(a[w]["wall_time"] - b[w]["wall_time"]) <= 1e-4 for w in a)
            for w in a:
                for f in FIELDS:
                    cols[f][0].append(float(a[w][f]))
                    cols[f][1].append(float(b[w][f]))
        ot, tt = o["traffic"], th["traffic"]
        same_traffic += (ot is None) == (tt is None) and (ot is None or all(
            abs(ot[k] - tt[k]) <= 1e-6 * max(1.0, abs(tt[k])) for k in ("num_req", "isl", "osl")))
        mine = (o["scale_to"] or {}).get("num_decode")
        their = (th["scale_to"] or {}).get("num_decode")
        if first_decision_diff is None and mine != their:
            first_decision_diff = {"t": o["t"], "ours": mine, "theirs": their, "reasons": [o["reason"], th["reason"]],
                                   "est_itl_ms": [o["est_itl"], th["est_itl"]]}
    stats = {f: {"ours_mean": statistics.fmean(a) if a else None, "theirs_mean": statistics.fmean(b) if b else None}
             for f, (a, b) in cols.items()}
    return {"ticks": compared, "same_workers": same_workers, "same_fpms": same_fpms, "same_traffic": same_traffic,
            "first_decision_diff": first_decision_diff, "fields": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--until", type=float, default=735.0)
    ap.add_argument("--mode", default="agg", choices=["agg", "disagg"])
    a = ap.parse_args()
    theirs = record_theirs(a.reference, a.until)
    ours = record_ours(a.mode, a.until)
    s = summary(ours, theirs)
    a.out.write_text(json.dumps({"ours": ours, "theirs": theirs, "summary": s}, indent=1))
    print(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
