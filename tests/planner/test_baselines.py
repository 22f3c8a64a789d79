"""Baselines in every planner run, from the command line: the best fixed fleets really are the cheapest that
reach their targets, the hindsight figures are those of a replay of its schedule (never an estimate), regret
is the planner minus each baseline, and runs without a planner or with --no-baselines pay nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

PLANNER = {"optimization_target": "sla", "ttft": 1000, "itl": 50, "enable_load_scaling": True,
           "load_adjustment_interval": 5, "throughput_adjustment_interval": 60}
RUN = ["run", "--demo", "--max-requests", "300", "--no-progress", "--baselines-jobs", "2"]


def run(tmp_path: Path, *args: str, name: str = "r.json") -> tuple[dict[str, Any], str]:
    out = tmp_path / name
    result = CliRunner().invoke(app, [*RUN, *args, "--report-json", str(out)])
    assert result.exit_code == 0, result.output
    return dict(json.loads(out.read_text())), result.output


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return run(tmp_path_factory.mktemp("planned"), "--planner-config", json.dumps(PLANNER))


def test_every_planner_run_reports_its_baselines_and_prints_them(planned: tuple[dict[str, Any], str]) -> None:
    report, output = planned
    b = report["baselines"]
    assert set(b) >= {"best_fixed", "hindsight", "regret", "goal", "planner", "replays", "wall_s"}
    assert b["goal"] == 0.9
    assert b["planner"] == {"attainment": report["sla"]["attainment"], "gpu_hours": report["cost"]["gpu_hours"],
                            "replica_changes": report["cost"]["replica_transitions"]}
    for line in ("Baselines (", "best fixed fleet reaching the planner's", "best fixed fleet reaching the goal 90.0 %",
                 "hindsight schedule"):
        assert line in output
    assert f"{b['replays']} replays, {b['wall_s']:.1f} s wall" in output  # their cost is shown


def test_each_fleet_is_replayed_once_and_the_hindsight_reuses_the_search(planned: tuple[dict[str, Any], str]) -> None:
    b = planned[0]["baselines"]
    fleets = [r["workers"]["agg"] for r in b["fixed_runs"]]
    assert len(fleets) == len(set(fleets))
    # the hindsight ladder (1 … two above the goal fleet) is made of fixed fleets the search also needs: only
    # its scripted verifications add replays
    ladder = set(range(1, b["best_fixed"]["at_goal"]["workers"]["agg"] + 3))
    assert ladder <= set(fleets)
    assert b["replays"] == len(fleets) + b["hindsight"]["verifications"]
    assert b["wall_s"] > 0


def test_best_fixed_fleets_are_the_smallest_that_reach_their_targets(planned: tuple[dict[str, Any], str],
                                                                      tmp_path: Path) -> None:
    report, _ = planned
    b = report["baselines"]
    for key, target in (("at_planner_attainment", report["sla"]["attainment"]), ("at_goal", 0.9)):
        best = b["best_fixed"][key]
        assert best["reached"] and best["target"] == target
        n = best["workers"]["agg"]
        assert best["attainment"] >= target
        if n > 1:  # one worker fewer misses the target: checked by an independent replay
            fewer, _ = run(tmp_path, "--num-workers", str(n - 1), "--sla-ttft-ms", "1000", "--sla-itl-ms", "50",
                           name=f"fewer-{key}.json")
            assert fewer["sla"]["attainment"] < target
        same, _ = run(tmp_path, "--num-workers", str(n), "--sla-ttft-ms", "1000", "--sla-itl-ms", "50",
                      name=f"same-{key}.json")
        assert same["sla"]["attainment"] == best["attainment"]
        assert same["cost"]["gpu_hours"] == pytest.approx(best["gpu_hours"])
        assert b["regret"][f"best_fixed_{key}"] == {
            "gpu_hours": pytest.approx(report["cost"]["gpu_hours"] - best["gpu_hours"]),
            "attainment": pytest.approx(report["sla"]["attainment"] - best["attainment"]),
        }


def test_hindsight_figures_are_a_replay_of_its_schedule(planned: tuple[dict[str, Any], str], tmp_path: Path) -> None:
    report, _ = planned
    h = report["baselines"]["hindsight"]
    assert h["met"] == (h["attainment"] >= 0.9)
    assert h["replica_changes"] <= h["change_budget"] == report["cost"]["replica_transitions"]
    # intervals of about a 30th of the run (10 s to a minute), a whole number of report bins
    bin_s, target = report["timeseries"]["bin_s"], min(60.0, max(10.0, report["sim"]["simulated_s"] / 30))
    assert h["interval_s"] % bin_s == 0 and abs(h["interval_s"] - target) <= bin_s / 2
    rows = h["schedule"]
    first = rows[0]
    assert first["t_s"] == 0
    scripted = {"policy": "scripted", "schedule": [r for r in rows if r["t_s"] > 0] or [first]}
    replay, _ = run(tmp_path, "--num-workers", str(first["replicas"]), "--sla-ttft-ms", "1000", "--sla-itl-ms",
                    "50", "--planner-config", json.dumps(scripted), "--no-baselines")
    assert replay["sla"]["attainment"] == h["attainment"]
    assert replay["cost"]["gpu_hours"] == pytest.approx(h["gpu_hours"])
    assert replay["cost"]["replica_transitions"] == h["replica_changes"]
    # the schedule is cheaper than the fixed fleet that reaches the goal (else it would not be worth building)
    assert h["gpu_hours"] <= report["baselines"]["best_fixed"]["at_goal"]["gpu_hours"] * 1.02


def test_html_report_places_the_planner_among_the_baselines(planned: tuple[dict[str, Any], str],
                                                            tmp_path: Path) -> None:
    report, _ = planned
    (tmp_path / "r.json").write_text(json.dumps(report))
    result = CliRunner().invoke(app, ["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.html"),
                                      "--plotlyjs", "cdn"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert 'id="llmreplay-baselines"' in page
    for name in ("planner (this run)", "fixed fleets", "hindsight schedule (verified"):
        assert name in page
    assert '"mode":"lines+markers+text","name":"fixed fleets"' in page  # agg: the time-shared frontier is drawn


def test_no_baselines_without_a_planner_or_when_switched_off(tmp_path: Path) -> None:
    plain, output = run(tmp_path, "--num-workers", "2")
    assert plain["baselines"] is None and "Baselines" not in output  # the typed report has every block; null = n/a
    off, output = run(tmp_path, "--planner-config", json.dumps(PLANNER), "--no-baselines")
    assert off["baselines"] is None and "Baselines" not in output


def test_disagg_best_fixed_is_a_prefill_decode_pair(tmp_path: Path) -> None:
    report, _ = run(tmp_path, "--max-requests", "150", "--num-prefill-workers", "1", "--num-decode-workers", "1",
                    "--planner-config", json.dumps({**PLANNER, "ttft": 2000}))
    best = report["baselines"]["best_fixed"]["at_goal"]
    assert set(best["workers"]) == {"prefill", "decode"}
    cheaper = [r for r in report["baselines"]["fixed_runs"] if r["gpu_hours"] < best["gpu_hours"] - 1e-9]
    assert all(r["attainment"] < 0.9 for r in cheaper)


def test_baseline_replays_run_on_ray_as_sweeps_do(tmp_path: Path) -> None:
    """--baselines-executor ray: the same baselines as the local pool (Ray started once for every batch)."""
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'llmreplay[ray]' to run this test")
    args = ["--max-requests", "120", "--planner-config", json.dumps(PLANNER)]
    local, _ = run(tmp_path, *args, name="local.json")
    on_ray, output = run(tmp_path, *args, "--baselines-executor", "ray", name="ray.json")

    def without_wall(b: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in b.items() if k != "wall_s"}

    assert without_wall(on_ray["baselines"]) == without_wall(local["baselines"])
    assert "Baselines (" in output


@pytest.mark.parametrize(("flags", "message"), [
    (["--baselines-address", "auto"], "--baselines-address is for --baselines-executor ray"),
    (["--baselines-jobs", "1000"], "--baselines-jobs 1,000 would start that many processes"),
])
def test_bad_baseline_flags_are_refused_before_the_run(flags: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*RUN, "--planner-config", json.dumps(PLANNER), *flags])
    assert result.exit_code == 2
    assert message in result.output
    assert "Baselines (" not in result.output and "Simulated Time" not in result.output
