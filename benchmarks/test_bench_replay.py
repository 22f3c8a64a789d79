"""Replay speed and memory: the figures in docs/performance.md come from here (`make bench`).

Each case runs the CLI in a fresh process (so peak RSS is that run's alone) and prints one line of figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"
CONV = TRACES / "mooncake_fast25_conversation_trace.jsonl"
FP8 = '{"aic_system":"h200_sxm","aic_model_path":"nvidia/Llama-3.1-8B-Instruct-FP8","aic_tp_size":1}'
QWEN = '{"aic_system":"h200_sxm","aic_model_path":"Qwen/Qwen3-8B","aic_tp_size":1}'
DYNAMO_PLANNER = ('{"policy":"llmreplay","mode":"agg","optimization_target":"sla","ttft":2500,"itl":50,'
                  '"enable_throughput_scaling":true,'
                  '"enable_load_scaling":true,"throughput_adjustment_interval":60,"load_adjustment_interval":5}')


def replay(tmp: Path, *args: str) -> dict[str, object]:
    out = tmp / "bench.json"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llmreplay", "run", *args, "--report-json", str(out), "--quiet"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    sim = report["sim"]
    row = {
        "process_wall_s": round(wall, 2),
        "run_wall_s": round(sim["wall_s"], 2),
        "requests": report["requests"]["total"],
        "requests_per_wall_s": round(sim["requests_per_wall_s"]),
        "simulated_s_per_wall_s": round(sim["simulated_s_per_wall_s"]),
        "events": sim["events"],
        "engine_steps": sim["engine_steps"],
        "peak_rss_mb": round(sim["peak_rss_mb"]),  # measured inside that process (getrusage SELF)
        "planner_wall_s": sim.get("planner_wall_s"),
        "gpu_hours": round(report["cost"]["gpu_hours"], 3),
        "transitions": report["cost"]["replica_transitions"],
        "reversals": report["cost"]["reversals"],
    }
    print(f"\n{' '.join(args[:1])}: {json.dumps(row)}")
    return row


def test_full_mooncake_conversation_4_workers(tmp_path: Path) -> None:
    row = replay(tmp_path, str(CONV), "--num-workers", "4", "--extra-engine-args", FP8)
    assert row["run_wall_s"] < 10  # type: ignore[operator]
    assert row["peak_rss_mb"] < 500  # type: ignore[operator]


def test_planner_cost_against_the_same_run_without_it(tmp_path: Path) -> None:
    plain = replay(tmp_path, str(CONV), "--num-workers", "2", "--extra-engine-args", QWEN)
    planned = replay(tmp_path, str(CONV), "--num-workers", "2", "--extra-engine-args", QWEN,
                     "--planner-config", DYNAMO_PLANNER, "--no-baselines")  # speed of the run alone
    ratio = planned["run_wall_s"] / plain["run_wall_s"]  # type: ignore[operator]
    print(f"planner / plain wall time: {ratio:.2f}")


@pytest.mark.parametrize("n", [10_000, 100_000, 1_000_000])
def test_cost_grows_linearly_with_trace_size(tmp_path: Path, n: int) -> None:
    trace = tmp_path / f"poisson_{n}.jsonl"
    subprocess.run([sys.executable, "-m", "llmreplay", "synth", "poisson", "--num-requests", str(n), "--rate", "50",
                    "--isl", "lognormal:7,0.8", "--osl", "uniform:20,300", "--seed", "1", "-o", str(trace)],
                   check=True, capture_output=True)
    row = replay(tmp_path, str(trace), "--num-workers", "8")
    print(f"per request: {row['run_wall_s'] / n * 1e6:.1f} µs")  # type: ignore[operator]
