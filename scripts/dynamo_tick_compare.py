"""Tick-by-tick comparison of what the Dynamo policy observes in llmreplay with what Dynamo 1.6.1 observed.

Replays the conversation hour closed-loop with ``policy: dynamo`` (the set-up of
``benchmarks/test_bench_dynamo_closed_loop.py``), records every tick's input as our Dynamo policy sees it
(worker counts, each worker's FPM: last pass and queue) and its estimated TTFT and decision, and prints them
beside the same tick of Dynamo's reference report. Used to trace where the two closed loops part.

    PYTHONPATH=src python scripts/dynamo_tick_compare.py disagg [--until 300] [--engine-json '{...}'] \
        [--json OUT.json]

Columns per tick and side: prefill workers ready, per worker ``q=<queued prompts>/<queued tokens k>``, the last
pass ``p=<prefill requests>:<tokens>`` and its wall time, the estimated TTFT and ITL, and ``scale_to`` (prefill in
disagg; agg: the aggregated workers, which Dynamo reports as the decode role).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "src"))

from test_bench_dynamo_closed_loop import ENGINE, REFERENCE, run_config  # noqa: E402

from llmreplay.config import build_run_config  # noqa: E402
from llmreplay.planner.dynamo import policy as policy_mod  # noqa: E402
from llmreplay.planner.dynamo.fpm import Fpm  # noqa: E402
from llmreplay.runner import run  # noqa: E402


def _fpm_row(f: Fpm) -> dict[str, Any]:
    s, q = f.scheduled, f.queued
    return {"w": f.worker_id, "wall": round(f.wall_time, 4), "np": s.num_prefill_requests, "tp": s.sum_prefill_tokens,
            "kvp": s.sum_prefill_kv_tokens, "nd": s.num_decode_requests, "qn": q.num_prefill_requests,
            "qt": q.sum_prefill_tokens}


def _ref_row(e: dict[str, Any]) -> dict[str, Any]:
    m = e["metrics"]
    s, q = m["scheduled_requests"], m["queued_requests"]
    return {"w": str(e["worker_id"]), "wall": round(m["wall_time"], 4), "np": s["num_prefill_requests"],
            "tp": s["sum_prefill_tokens"], "kvp": s["sum_prefill_kv_tokens"], "nd": s["num_decode_requests"],
            "qn": q["num_prefill_requests"], "qt": q["sum_prefill_tokens"]}


def ours(mode: str, until: float | None, engine: dict[str, Any]) -> list[dict[str, Any]]:
    """Run llmreplay and record each tick's observation (prefill FPMs, counts) with its diagnostics."""
    seen: list[dict[str, Any]] = []
    agg = "agg" if mode == "agg" else None  # agg: the workers' FPMs and counts are the decode role's
    original = policy_mod.DynamoPolicy.tick

    def spy(self: policy_mod.DynamoPolicy, sched: Any, inp: Any) -> Any:
        eff = original(self, sched, inp)
        wc = inp.worker_counts
        seen.append({
            "t": round(inp.now_s, 3),
            "ready_p": (wc.ready_num_prefill if agg is None else wc.ready_num_decode) if wc else None,
            "prefill": [_fpm_row(f) for _, f in sorted(((inp.fpm_prefill if agg is None else inp.fpm_decode)
                                                         or {}).items())],
            "ttft": eff.diagnostics.estimated_ttft_ms,
            "itl": eff.diagnostics.estimated_itl_ms,
            "scale_p": (eff.scale_to.num_prefill if agg is None else eff.scale_to.num_decode)
            if eff.scale_to else None,
            "reason_p": eff.diagnostics.load_decision_reason_prefill,
        })
        return eff

    policy_mod.DynamoPolicy.tick = spy  # type: ignore[method-assign]
    try:
        cfg = run_config(mode, engine)
        if until is not None:
            cfg["max_sim_time_seconds"] = until
        run(build_run_config(cfg))
    finally:
        policy_mod.DynamoPolicy.tick = original  # type: ignore[method-assign]
    return seen


def theirs(mode: str, until: float | None) -> list[dict[str, Any]]:
    ref = json.loads(gzip.decompress((REFERENCE / f"conv_{mode}.report.json.gz").read_bytes()))
    out = []
    for t in ref["planner"]["ticks"]:
        now = t["input"]["now_s"]
        if until is not None and now > until:
            break
        fo = t["input"].get("fpm_observations") or {}
        wc = t["input"].get("worker_counts") or {}
        d = t["effects"]["diagnostics"]
        st = t["effects"].get("scale_to")
        role = "decode" if mode == "agg" else "prefill"
        out.append({"t": round(now, 3), "ready_p": wc.get(f"ready_num_{role}"),
                    "prefill": [_ref_row(e) for e in (fo.get(role) or [])],
                    "ttft": d.get("estimated_ttft_ms"), "itl": d.get("estimated_itl_ms"),
                    "scale_p": st.get(f"num_{role}") if st else None,
                    "reason_p": d.get("load_decision_reason_prefill")})
    return out


def _fmt(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    ws = " ".join(f"[q={w['qn']}/{w['qt'] / 1000:.0f}k p={w['np']}:{w['tp']} {w['wall'] * 1000:.0f}ms]"
                  for w in row["prefill"])
    ttft = f"{row['ttft']:.0f}" if row["ttft"] is not None else "-"
    itl = f"{row['itl']:.0f}" if row["itl"] is not None else "-"
    return f"n={row['ready_p']} ttft={ttft:>5} itl={itl:>4} ->{row['scale_p'] or '':<2} {ws}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["agg", "disagg"])
    ap.add_argument("--until", type=float, default=None)
    ap.add_argument("--engine-json", default=None, help="engine args replacing the benchmark's (JSON)")
    ap.add_argument("--json", default=None, help="write both tick lists here")
    a = ap.parse_args()
    engine = json.loads(a.engine_json) if a.engine_json else ENGINE
    mine = ours(a.mode, a.until, engine)
    ref = theirs(a.mode, a.until)
    by_t = {r["t"]: r for r in mine}
    for r in ref:
        m = by_t.get(r["t"])
        print(f"{r['t']:7.1f}  D {_fmt(r)}\n{'':9}L {_fmt(m)}")
    if a.json:
        Path(a.json).write_text(json.dumps({"ours": mine, "dynamo": ref}))


if __name__ == "__main__":
    main()
