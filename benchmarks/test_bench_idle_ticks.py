"""Idle planner ticks collapsed vs evaluated one by one (issue #13), on traces with one long silence: 20
requests at t = 0 and 20 after the gap, one agg worker, Dynamo's policy with its load (5 s) and throughput
(180 s) loops and the constant predictor. Ticks evaluated (a work counter: one report entry each) and wall
time, as ratios measured in the same run, for gaps of a day and a week; the one-year gap collapsed only: one by
one it is 6.3 million ticks, and the run was killed for memory at 21.8 GB before it ended.
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


def measure(tmp_path: Path, gap_s: float, tick_by_tick: bool) -> tuple[int, int, float, float]:
    """(ticks evaluated, grid ticks, wall s, GPU-hours) of one run."""
    trace = write_trace(tmp_path / f"gap{gap_s:.0f}.jsonl", [0.0, gap_s], per_burst=20)
    cfg = build_run_config({"trace": str(trace), "num_workers": 1,
                            "planner_config": POLICIES["dynamo-constant-load-and-throughput"]})
    os.environ[TICK_BY_TICK_ENV] = "1" if tick_by_tick else ""
    try:
        t0 = time.perf_counter()
        report = run(cfg).report
        wall = time.perf_counter() - t0
    finally:
        os.environ.pop(TICK_BY_TICK_ENV, None)
    entries = report["planner"]["ticks"]
    return len(entries), sum(t["count"] or 1 for t in entries), wall, report["cost"]["gpu_hours"]


def test_idle_gaps_collapsed_vs_one_by_one(tmp_path: Path) -> None:
    print()
    for name, gap in (("one day", 86_400.0), ("one week", 7 * 86_400.0)):
        ev_c, grid_c, wall_c, gh_c = measure(tmp_path, gap, tick_by_tick=False)
        ev_r, grid_r, wall_r, gh_r = measure(tmp_path, gap, tick_by_tick=True)
        print(f"{name} gap: collapsed {ev_c:,} ticks evaluated in {wall_c:.2f} s; one by one {ev_r:,} in "
              f"{wall_r:.1f} s: {ev_r / ev_c:,.0f}× fewer ticks, {wall_r / wall_c:,.1f}× less wall")
        assert grid_c == grid_r == ev_r and gh_c == gh_r
    ev, grid, wall, _ = measure(tmp_path, YEAR_S, tick_by_tick=False)
    print(f"one-year gap: collapsed {ev:,} ticks evaluated for {grid:,} grid ticks in {wall:.2f} s")
    assert grid > 6_000_000 and ev < 2_000
