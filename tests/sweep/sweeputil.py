"""Sweep test helpers: small, fast sweep files over the bundled demo trace (constant step time, 120 requests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from llmreplay.sweep.results import WALL_COLUMNS
from llmreplay.trace import demo_trace_path

#: a point takes ~0.05 s: a constant 5 ms step and a slice of the demo trace; the jittered arrivals are what make
#: the seed matter. No planner: resume and grid tests should not move when the planner is retuned.
BASE: dict[str, Any] = {
    "trace": str(demo_trace_path()),
    "max_requests": 120,
    "num_workers": 1,
    "arrival_jitter": "uniform:2",
    "sla_ttft_ms": 200,
    "sla_itl_ms": 50,
    "extra_engine_args": {"perf_model": {"kind": "constant", "step_ms": 5}},
}
#: the planner in the loop (it is what makes startup_time matter), for the executor-equivalence tests
PLANNER: dict[str, Any] = {"mode": "agg", "ttft": 200, "itl": 50, "load_adjustment_interval": 5,
                           "throughput_adjustment_interval": 30}


def write_sweep(folder: Path, axes: dict[str, Any], *, base: dict[str, Any] | None = None, name: str = "sweep.yaml",
                **top: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump({"base": BASE if base is None else base, "axes": axes, **top}, sort_keys=False))
    return path


def without_wall(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows minus wall-clock columns: what must be identical across executors, job counts and re-runs."""
    return [{k: v for k, v in r.items() if k not in WALL_COLUMNS} for r in rows]


def read_table(out: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return list(pq.read_table(out / "results.parquet").to_pylist())


def llmreplay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmreplay", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)
