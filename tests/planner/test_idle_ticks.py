"""Planner ticks over idle stretches are collapsed (llmreplay.sim.idle): the run decides, scales, bills and
reports exactly as one that evaluates every tick, and a year of silence costs a bounded number of ticks."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.sim.idle import TICK_BY_TICK_ENV

YEAR_S = 365 * 86400
SLA = {"optimization_target": "sla", "ttft": 200, "itl": 20}
POLICIES: dict[str, dict[str, Any]] = {
    "dynamo-constant-load-and-throughput": {"policy": "dynamo", "load_predictor": "constant",
                                            "enable_load_scaling": True, **SLA},
    "dynamo-constant-throughput-only": {"policy": "dynamo", "load_predictor": "constant",
                                        "throughput_adjustment_interval": 30, **SLA, "ttft": 50, "itl": 5},
    "llmreplay-constant": {"policy": "llmreplay", "enable_load_scaling": True, "load_adjustment_interval": 5,
                           "throughput_adjustment_interval": 60, **SLA},
    "llmreplay-moving-average": {"policy": "llmreplay", "load_predictor": "moving_average",
                                 "enable_load_scaling": True, "throughput_adjustment_interval": 60, **SLA},
}


def write_trace(path: Path, burst_starts_s: list[float], per_burst: int = 300,
                reject_at_s: float | None = None) -> Path:
    """Bursts of requests 20 ms apart (heavy enough to scale up), separated by long silences; ``reject_at_s``:
    one request too long for any worker then (rejected on arrival: the planner hears of it, nothing runs)."""
    rows = []
    for start in burst_starts_s:
        for i in range(per_burst):
            rows.append({"timestamp": round((start + i * 0.02) * 1000), "input_length": 2000 + 37 * (i % 50),
                         "output_length": 200 + 5 * (i % 30)})
    if reject_at_s is not None:
        rows.append({"timestamp": round(reject_at_s * 1000), "input_length": 10_000_000, "output_length": 10})
        rows.sort(key=lambda r: r["timestamp"])
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_cli(tmp_path: Path, name: str, trace: Path, planner: dict[str, Any], disagg: bool, tick_by_tick: bool,
            baselines: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    out = tmp_path / name
    workers = ["--num-prefill-workers", "1", "--num-decode-workers", "1"] if disagg else ["--num-workers", "1"]
    result = CliRunner().invoke(app, ["run", str(trace), *workers, "--planner-config", json.dumps(planner),
                                      "--quiet", "--report-json", f"{out}.json", "--requests-out", f"{out}.jsonl",
                                      "--baselines" if baselines else "--no-baselines"],
                                env={TICK_BY_TICK_ENV: "1" if tick_by_tick else ""})
    assert result.exit_code == 0, result.output
    report = json.loads(Path(f"{out}.json").read_text())
    requests = [json.loads(line) for line in Path(f"{out}.jsonl").read_text().splitlines()]
    return report, requests


def expand(ticks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every tick an entry stands for, in time order (times in whole microseconds)."""
    out = []
    for t in ticks:
        for i in range(t["count"] or 1):
            tick = {k: v for k, v in t.items() if k not in ("count", "every_s")}
            tick["t_s"] = round((t["t_s"] + i * (t["every_s"] or 0.0)) * 1e6)
            out.append(tick)
    return sorted(out, key=lambda tick: tick["t_s"])


def assert_same_run(collapsed: dict[str, Any], reference: dict[str, Any]) -> None:
    assert expand(collapsed["planner"]["ticks"]) == expand(reference["planner"]["ticks"])
    for key in ("events", "decisions"):
        assert collapsed["planner"][key] == reference["planner"][key], key
    for block in ("cost", "pools", "timeseries", "requests", "metrics", "sla"):
        assert collapsed[block] == reference[block], block
    wall = ("wall_s",)  # the one field of the baselines that is a wall clock
    assert _without(collapsed["baselines"], wall) == _without(reference["baselines"], wall)


def _without(block: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    return None if block is None else {k: v for k, v in block.items() if k not in keys}


@pytest.mark.parametrize("disagg", [False, True], ids=["agg", "disagg"])
@pytest.mark.parametrize("policy", list(POLICIES))
def test_collapsed_idle_ticks_decide_exactly_as_ticking_one_by_one(tmp_path: Path, policy: str,
                                                                   disagg: bool) -> None:
    trace = write_trace(tmp_path / "gaps.jsonl", [0.0, 1800.0, 5400.0], per_burst=600, reject_at_s=5100.0)
    planner = POLICIES[policy]
    baselines = policy == "dynamo-constant-load-and-throughput" and not disagg  # slow: one case compares them
    collapsed, requests = run_cli(tmp_path, "collapsed", trace, planner, disagg, False, baselines)
    reference, reference_requests = run_cli(tmp_path, "reference", trace, planner, disagg, True, baselines)
    assert (collapsed["baselines"] is not None) == baselines
    assert_same_run(collapsed, reference)
    assert requests == reference_requests
    assert collapsed["requests"]["rejected"] == 1  # an arrival in mid-gap, which no cluster work follows
    assert collapsed["planner"]["events"], "the bursts must make the planner scale (else the test proves little)"
    # the collapse happened: fewer ticks evaluated (one entry each), entries standing for many ticks
    entries = collapsed["planner"]["ticks"]
    assert len(entries) < len(reference["planner"]["ticks"]) / 2
    assert max(t["count"] or 1 for t in entries) > 5
    assert all(t["count"] is None for t in reference["planner"]["ticks"])


def test_a_scripted_schedule_over_idle_gaps_matches_and_costs_its_rows(tmp_path: Path) -> None:
    """policy scripted has no periodic ticks: it acts at its schedule's rows only, gap or no gap."""
    trace = write_trace(tmp_path / "gaps.jsonl", [0.0, YEAR_S / 2, YEAR_S])
    planner = {"policy": "scripted", "schedule": [{"t_s": 0, "component": "agg", "replicas": 2},
                                                  {"t_s": 600, "component": "agg", "replicas": 1},
                                                  {"t_s": YEAR_S / 2 - 60, "component": "agg", "replicas": 3}]}
    collapsed, requests = run_cli(tmp_path, "collapsed", trace, planner, False, tick_by_tick=False)
    reference, reference_requests = run_cli(tmp_path, "reference", trace, planner, False, tick_by_tick=True)
    assert_same_run(collapsed, reference)
    assert requests == reference_requests
    assert [e["to"] for e in collapsed["planner"]["events"]] == [2, 1, 3]
    assert collapsed["sim"]["events"] < 10_000  # events follow requests and rows, not the year


@pytest.mark.parametrize("policy", ["dynamo-constant-load-and-throughput", "llmreplay-constant"])
def test_a_one_year_idle_gap_costs_a_bounded_number_of_ticks(tmp_path: Path, policy: str) -> None:
    trace = write_trace(tmp_path / "year.jsonl", [0.0, YEAR_S], per_burst=20)
    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "llmreplay", "run", str(trace), "--num-workers", "1",
                           "--planner-config", json.dumps(POLICIES[policy]), "--quiet", "--no-baselines",
                           "--report-json", f"{out}.json", "--requests-out", f"{out}.jsonl"],
                          capture_output=True, text=True, timeout=600)  # a generous guard; the work is counted
    assert proc.returncode == 0, proc.stderr
    report = json.loads(Path(f"{out}.json").read_text())
    entries = report["planner"]["ticks"]
    assert len(entries) < 2_000  # ticks evaluated: one entry each (one by one: 6.3 million)
    # the entries stand for every grid tick: one per period until the tick after the last request ends
    period = 5.0 if policy.startswith("dynamo") else math.gcd(5, 60)
    last_end_s = max(json.loads(line)["finish_ms"] for line in Path(f"{out}.jsonl").read_text().splitlines()) / 1e3
    assert sum(t["count"] or 1 for t in entries) == math.ceil(last_end_s / period)
    hits = np.zeros(sum(t["count"] or 1 for t in entries), dtype=np.int64)  # grid tick k (from 1) at k-1
    for t in entries:
        first, step = t["t_s"] / period, (t["every_s"] or period) / period
        assert first == round(first) and step == round(step), t  # on the grid
        np.add.at(hits, round(first) - 1 + round(step) * np.arange(t["count"] or 1), 1)
    assert (hits == 1).all()  # every grid tick stood for exactly once
    assert report["planner"]["ticks"][-1]["t_s"] > YEAR_S  # it ticked on past the gap, on the same grid


def test_the_html_report_shows_a_collapsed_stretch_once_with_its_count(tmp_path: Path) -> None:
    trace = write_trace(tmp_path / "gaps.jsonl", [0.0, 3600.0], per_burst=20)
    html = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["run", str(trace), "--num-workers", "1", "--planner-config",
                                      json.dumps(POLICIES["dynamo-constant-load-and-throughput"]), "--quiet",
                                      "--no-baselines", "--report-html", str(html)])
    assert result.exit_code == 0, result.output
    text = html.read_text()
    assert "ticks, every 180 s to" in text  # the decision marker's hover names the stretch it stands for


@pytest.mark.parametrize("planner", [
    pytest.param({"policy": "dynamo", "load_predictor": "arima", "enable_load_scaling": True, **SLA},
                 id="dynamo-arima"),
    pytest.param({"policy": "dynamo", "load_predictor": "constant", "enable_load_scaling": True,
                  "load_adjustment_interval": 2.1, "throughput_adjustment_interval": 63, **SLA},
                 id="dynamo-interval-not-float-exact"),
])
def test_without_a_proof_of_a_fixed_point_ticks_run_one_by_one(tmp_path: Path, planner: dict[str, Any]) -> None:
    """Dynamo's ARIMA refits on every window after traffic (no fixed point to show); an interval that is no
    multiple of 1/512 s makes the twin's float clock round differently at different times. Both tick one by one
    after the first burst, and still equal the reference."""
    if planner["load_predictor"] == "arima":
        pytest.importorskip("pmdarima")
    trace = write_trace(tmp_path / "gaps.jsonl", [0.0, 1200.0], per_burst=100)
    collapsed, requests = run_cli(tmp_path, "collapsed", trace, planner, False, False)
    reference, reference_requests = run_cli(tmp_path, "reference", trace, planner, False, True)
    assert_same_run(collapsed, reference)
    assert requests == reference_requests
    first_burst_end_s = 2.0 + 60  # 100 requests 20 ms apart, then well past their completion
    assert all(t["count"] is None for t in collapsed["planner"]["ticks"] if t["t_s"] > first_burst_end_s)
    assert len(collapsed["planner"]["ticks"]) == len(reference["planner"]["ticks"]) > 1200 / 5


@pytest.mark.parametrize("gap_s, cap", [(YEAR_S, None), (86400, 1000)])
def test_arima_that_must_tick_one_by_one_over_a_long_gap_is_refused_before_the_run(
        tmp_path: Path, gap_s: int, cap: int | None) -> None:
    """Dynamo's ARIMA predictor refits every throughput interval, so its idle ticks cannot be skipped exactly:
    over a long gap the run's cost would follow simulated time (a year: hours). It exits 2 before simulating,
    naming the cap, the reason and the ways out, instead of hanging."""
    pytest.importorskip("pmdarima", reason="the arima extra")
    trace = tmp_path / "gap.jsonl"
    trace.write_text("".join(json.dumps({"timestamp": t * 1000, "input_length": 500, "output_length": 20,
                                         "hash_ids": [i]}) + "\n" for i, t in enumerate([0, 1, gap_s, gap_s + 1])))
    planner = {"policy": "dynamo", "load_predictor": "arima", "enable_load_scaling": True, **SLA}
    args = ["run", str(trace), "--num-workers", "1", "--planner-config", json.dumps(planner), "--no-baselines",
            "--quiet", "--no-progress", *(["--max-planner-ticks", str(cap)] if cap else [])]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    text = " ".join(str(res.exception or "").split() + res.output.split())
    assert f"{gap_s // 5:,} ticks" in text and "max_planner_ticks" in text and "ARIMA" in text
    assert "'constant'" in text and "--max-planner-ticks" in text
