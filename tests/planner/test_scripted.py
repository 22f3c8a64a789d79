"""``policy: scripted`` from the command line: the fleet follows the schedule, new workers serve only after
their start-up time, a constant schedule is a fixed fleet, and a bad schedule exits 2 naming the line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

RUN = ["run", "--demo", "--max-requests", "300", "--quiet", "--no-progress"]


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def cli_process(*args: str) -> subprocess.CompletedProcess[str]:
    """As typed in a shell: bad input must exit 2 with one paragraph (the entry point turns errors into that)."""
    return subprocess.run([sys.executable, "-m", "llmreplay", *args], capture_output=True, text=True, timeout=300)


def run_report(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "r.json"
    result = cli(*RUN, *args, "--report-json", str(out))
    assert result.exit_code == 0, result.output
    return dict(json.loads(out.read_text()))


def test_the_fleet_follows_a_schedule_given_in_a_config_file_folder(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "fleet.csv").write_text("t_s,component,replicas\n60,agg,2\n20,agg,3\n")
    (conf / "run.yaml").write_text(
        "num_workers: 1\nextra_engine_args: {startup_time: 10}\n"
        "planner_config: {policy: scripted, schedule: fleet.csv}\n"
    )
    report = run_report(tmp_path, "--config", str(conf / "run.yaml"))
    assert report["planner"]["events"] == [
        {"t_s": 20.0, "component": "agg", "from": 1, "to": 3, "reason": "scale_up"},
        {"t_s": 60.0, "component": "agg", "from": 3, "to": 2, "reason": "scale_down"},
    ]
    assert report["cost"]["replica_transitions"] == 2
    series = report["timeseries"]
    pool = series["pools"]["agg"]
    bin_s = series["bin_s"]
    assert bin_s <= 3  # the demo trace's arrivals step by 3 s: intervals are 3 s, centred on the steps

    def at(t: float) -> tuple[int, int]:
        """(provisioned, active) workers at the end of the last interval ending by t (the series hold each
        interval's value at its end)."""
        i = max(k for k, start in enumerate(series["t_s"]) if start + bin_s <= t)
        return pool["provisioned_workers"][i], pool["active_workers"][i]

    # billed from t=20 s, serving from t=30 s (startup_time 10 s)
    assert at(18) == (1, 1)
    assert at(26) == (3, 1)
    assert at(32) == (3, 3)


def test_a_constant_schedule_is_the_fixed_fleet(tmp_path: Path) -> None:
    fixed = run_report(tmp_path, "--num-workers", "2", "--sla-ttft-ms", "2000", "--sla-itl-ms", "50")
    scripted = run_report(
        tmp_path, "--num-workers", "2", "--sla-ttft-ms", "2000", "--sla-itl-ms", "50", "--planner-config",
        json.dumps({"policy": "scripted", "schedule": [{"t_s": 0, "component": "agg", "replicas": 2}]}),
    )
    assert scripted["cost"]["replica_transitions"] == 0
    assert scripted["sla"] == fixed["sla"]
    assert scripted["metrics"] == fixed["metrics"]
    assert scripted["cost"]["gpu_hours"] == fixed["cost"]["gpu_hours"]


def test_disagg_schedule_scales_each_side(tmp_path: Path) -> None:
    sched = tmp_path / "s.csv"
    sched.write_text("t_s,component,replicas\n10,decode,2\n10,prefill,2\n50,prefill,1\n")
    report = run_report(tmp_path, "--num-prefill-workers", "1", "--num-decode-workers", "1",
                        "--planner-config", json.dumps({"policy": "scripted", "schedule": str(sched)}))
    events = [(e["t_s"], e["component"], e["to"]) for e in report["planner"]["events"]]
    assert sorted(events) == [(10.0, "decode", 2), (10.0, "prefill", 2), (50.0, "prefill", 1)]
    assert report["pools"]["decode"]["workers_peak"] == 2


@pytest.mark.parametrize(("csv", "needles"), [
    ("t,component,replicas\n0,agg,1\n", ["header must be 't_s,component,replicas'"]),
    ("t_s,component,replicas\n0,agg,1\n5,decode,2\n", ["s.csv:3", "component 'decode'", "'agg'"]),
    ("t_s,component,replicas\n0,agg,1\n5,agg,two\n", ["s.csv:3", "replicas 'two'"]),
    ("t_s,component,replicas\n-1,agg,1\n", ["s.csv:2", "t_s must be"]),
    ("t_s,component,replicas\n3,agg,1\n3,agg,2\n", ["s.csv:3", "second row", "t_s=3"]),
    ("t_s,component,replicas\n", ["no rows"]),
])
def test_bad_schedule_exits_2_naming_the_line(tmp_path: Path, csv: str, needles: list[str]) -> None:
    (tmp_path / "s.csv").write_text(csv)
    result = cli_process(*RUN, "--planner-config",
                         json.dumps({"policy": "scripted", "schedule": str(tmp_path / "s.csv")}))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    for needle in needles:
        assert needle in message
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("planner", [{"policy": "scripted"}, {"schedule": "s.csv"}])
def test_schedule_and_scripted_policy_come_together(planner: dict[str, Any]) -> None:
    result = cli_process(*RUN, "--planner-config", json.dumps(planner))
    assert result.returncode == 2
    assert "policy 'scripted' needs a schedule" in " ".join(result.stderr.split())
