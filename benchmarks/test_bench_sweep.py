"""Sweep throughput: N points on 2 jobs should take about half the time of the same N points on 1 job.

The figures in docs/performance-sweep.md come from here (`make bench`). Each case runs the CLI into a fresh
folder; the points are the startup-time study of examples/startup_sweep.yaml on the first 20 minutes of the
Mooncake conversation trace (~1 s each), so process start-up and trace loading are included, as a user sees them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.benchmark

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "startup_sweep.yaml"
N_POINTS = 12


def sweep(tmp: Path, jobs: int) -> tuple[float, list[float]]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["base"]["trace"] = str((EXAMPLE.parent / doc["base"]["trace"]).resolve())
    doc["base"]["duration"] = 1200
    doc["axes"] = {"extra_engine_args.startup_time": f"0..{10 * (N_POINTS - 1)} step 10"}
    f = tmp / f"sweep_j{jobs}.yaml"
    f.write_text(yaml.safe_dump(doc))
    out = tmp / f"out_j{jobs}"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmreplay", "sweep", str(f), "--out", str(out), "--jobs", str(jobs),
                           "--quiet"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert len(rows) == N_POINTS
    return wall, [r["sim.wall_s"] for r in rows]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 cores")
def test_two_jobs_halve_the_sweep_time(tmp_path: Path) -> None:
    one, point_walls_1 = sweep(tmp_path, 1)
    two, _ = sweep(tmp_path, 2)
    single = sum(point_walls_1) / len(point_walls_1)
    print(f"\nsweep of {N_POINTS} points: --jobs 1 {one:.1f} s, --jobs 2 {two:.1f} s, speed-up {one / two:.2f}x; "
          f"one point alone {single:.2f} s, so N/2 single runs = {N_POINTS * single / 2:.1f} s; "
          f"load average {os.getloadavg()[0]:.2f}")
    assert one / two > 1.5
