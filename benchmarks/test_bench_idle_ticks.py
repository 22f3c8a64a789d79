"""Idle planner ticks collapsed vs evaluated one by one (issue #13), on a trace with a one-year silence: 20
requests at t = 0 and 20 a year later, one agg worker, Dynamo's policy with its load (5 s) and throughput
(180 s) loops and the constant predictor. Ticks evaluated (a work counter: one report entry each) and wall time,
as ratios measured in the same run. One by one takes minutes (6.3 million ticks): `make bench` only.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from llmreplay.config import build_run_config
from llmreplay.runner import run
from llmreplay.sim.idle import TICK_BY_TICK_ENV

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "planner"))
from test_idle_ticks import POLICIES, YEAR_S, write_trace

pytestmark = pytest.mark.benchmark


def test_one_year_idle_gap_collapsed_vs_one_by_one(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "year.jsonl", [0.0, YEAR_S], per_burst=20)
    cfg = build_run_config({"trace": str(trace), "num_workers": 1,
                            "planner_config": POLICIES["dynamo-constant-load-and-throughput"]})
    results = {}
    for name, env in (("collapsed", ""), ("one by one", "1")):
        os.environ[TICK_BY_TICK_ENV] = env
        try:
            t0 = time.perf_counter()
            report = run(cfg).report
            wall = time.perf_counter() - t0
        finally:
            os.environ.pop(TICK_BY_TICK_ENV, None)
        entries = report["planner"]["ticks"]
        results[name] = (len(entries), sum(t["count"] or 1 for t in entries), wall, report["cost"]["gpu_hours"])
    (ev_c, grid_c, wall_c, gh_c), (ev_r, grid_r, wall_r, gh_r) = results["collapsed"], results["one by one"]
    print(f"\none-year gap: collapsed {ev_c:,} ticks evaluated in {wall_c:.2f} s; one by one {ev_r:,} in "
          f"{wall_r:.1f} s; ticks {ev_r / ev_c:,.0f}× fewer, wall {wall_r / wall_c:,.0f}× less; "
          f"grid ticks {grid_c:,} = {grid_r:,}; GPU-hours {gh_c:.6f} = {gh_r:.6f}")
    assert grid_c == grid_r == ev_r and gh_c == gh_r
