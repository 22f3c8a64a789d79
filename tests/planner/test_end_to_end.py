"""The planner on a real bursty trace: it scales up in bursts and down in the gaps, beating one fixed worker on
SLA attainment and a fixed peak-sized cluster on GPU-hours."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.config import build_run_config
from llmreplay.runner import run, write_outputs
from llmreplay.trace import demo_trace_path

PLANNER = {"policy": "llmreplay", "optimization_target": "sla", "ttft": 1000, "itl": 50, "enable_load_scaling": True,
           "load_adjustment_interval": 5, "throughput_adjustment_interval": 60}


def test_planner_beats_fixed_clusters_on_the_bursty_azure_code_trace(shared_traces: Path) -> None:
    base = {"trace": str(shared_traces / "azure_llm_2023_code.csv"), "arrival_speedup_ratio": 2,
            "sla_ttft_ms": 1000, "sla_itl_ms": 50}
    one = run(build_run_config({**base, "num_workers": 1})).report
    peak = run(build_run_config({**base, "num_workers": 4})).report
    planned = run(build_run_config({**base, "num_workers": 1, "planner_config": PLANNER})).report
    assert planned["sla"]["attainment"] > one["sla"]["attainment"] + 0.1
    # policy llmreplay keeps burst and queueing floors: measured 56 % of the peak fleet's GPU-hours (the floors'
    # cost) where the floor-less planner spent under half and lost more requests
    assert planned["cost"]["gpu_hours"] < 0.6 * peak["cost"]["gpu_hours"]
    events = planned["planner"]["events"]
    assert {e["reason"] for e in events} == {"scale_up", "scale_down"}
    assert planned["cost"]["replica_transitions"] == len(events)
    assert planned["cost"]["reversals"] <= len(events) // 10  # it does not flap
    ticks = planned["planner"]["ticks"]
    assert all(t["replicas_decode"] >= 1 for t in ticks)
    assert planned["cost"]["gpu_hours"] > 0


def test_report_filename_writes_the_html_under_planner_reports(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        cfg = build_run_config({"trace": str(demo_trace_path()),
                                "max_requests": 100, "planner_config": {**PLANNER, "report_filename": "r.html"}})
        lines = write_outputs(cfg, run(cfg))
        assert (tmp_path / "planner_reports" / "r.html").exists()
        assert any("planner_reports/r.html" in line for line in lines)
    finally:
        os.chdir(cwd)


def test_every_replica_change_is_explained_by_its_tick(shared_traces: Path) -> None:
    """policy llmreplay: a scale-up is the load loop's or a floor's (throughput, queueing, burst) doing, a
    scale-down the load loop's, and the tick of the change says which."""
    cfg = build_run_config({"trace": str(shared_traces / "azure_llm_2023_code.csv"), "arrival_speedup_ratio": 2,
                            "duration": 600, "num_workers": 1, "planner_config": PLANNER})
    report = run(cfg).report
    ticks = {t["t_s"]: t for t in report["planner"]["ticks"]}
    events = report["planner"]["events"]
    assert events
    for e in events:
        tick = ticks[e["t_s"]]
        if e["to"] > e["from"]:
            assert tick["reason_load"] == "scale_up" or tick["floor_decode"] >= e["to"], (e, tick)
        else:
            assert tick["reason_load"] == "scale_down", (e, tick)
    floors = [t for t in report["planner"]["ticks"] if t["burst_floor_decode"] is not None]
    assert floors and all(t["floor_decode"] >= t["burst_floor_decode"] - t["surplus_credit"] for t in floors)


def test_surplus_credit_never_takes_the_fleet_to_one_worker(tmp_path: Path) -> None:
    """policy llmreplay on a bursty trace with SLA to spare: the surplus credit takes two workers off the floors
    (attainment ≥ 93 %) but never leaves one worker where the floors ask for two or more (docs/planner.md)."""
    trace, out = tmp_path / "bursty.jsonl", tmp_path / "r.json"
    cli = CliRunner()
    made = cli.invoke(app, ["synth", "bursty", "--rate", "6", "--duration", "600", "--cv", "8", "--seed", "7",
                            "-o", str(trace)])
    assert made.exit_code == 0, made.output
    planner = {**PLANNER, "ttft": 2500, "enable_throughput_scaling": True}
    result = cli.invoke(app, ["run", str(trace), "--num-workers", "2", "--router", "round_robin", "--planner-config",
                              json.dumps(planner), "--no-baselines", "--no-progress", "--report-json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    ticks = [t for t in report["planner"]["ticks"] if t["burst_floor_decode"] is not None]
    spent = [t for t in ticks if t["surplus_credit"] == 2 and t["burst_floor_decode"] >= 2]
    assert spent, "the trace should leave enough surplus for a credit of two workers"
    assert all(t["floor_decode"] >= 2 and t["replicas_decode"] >= 2 for t in spent)
    assert report["sla"]["attainment"] >= 0.9
