"""Outputs and the error boundary, from the command line: every output is checked before the simulation, never
replaces an input or another output, stays in planner_reports/ when named by the planner, and is written
atomically; user text on the console is shown as typed (no rich markup); user mistakes exit 2, no traceback."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from llmreplay.cli.app import app
from llmreplay.trace import demo_trace_path

PLANNER = {"mode": "agg", "optimization_target": "sla", "ttft": 2000, "itl": 50,
           "enable_throughput_scaling": True, "enable_load_scaling": True,
           "throughput_adjustment_interval": 60, "load_adjustment_interval": 5}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["run", *args], terminal_width=200)


def user_error(res: Result, *needles: str) -> str:
    """Exit 2, no traceback, one message naming what matters."""
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    text = " ".join(res.output.split())
    for needle in needles:
        assert needle in text, text
    return text


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    p = tmp_path / "trace.jsonl"
    with demo_trace_path().open() as src, p.open("w") as dst:
        dst.writelines(line for _, line in zip(range(40), src, strict=False))
    return p


def test_report_equal_to_the_trace_is_refused_and_the_trace_kept(trace: Path) -> None:
    before = trace.read_bytes()
    user_error(run(str(trace), "--report-json", str(trace)), "--report-json", "input")
    user_error(run(str(trace), "--requests-out", str(trace)), "--requests-out", "input")
    assert trace.read_bytes() == before


def test_an_output_may_not_replace_the_config_file(trace: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.json"
    cfg.write_text(json.dumps({"max_requests": 5}))
    user_error(run(str(trace), "--config", str(cfg), "--report-json", str(cfg)), "input")
    assert json.loads(cfg.read_text()) == {"max_requests": 5}


def test_two_outputs_on_one_path_are_refused(trace: Path, tmp_path: Path) -> None:
    same = str(tmp_path / "out.json")
    user_error(run(str(trace), "--report-json", same, "--report-html", same), "--report-json", "--report-html",
               "both write")
    user_error(run(str(trace), "--report-json", same, "--requests-out", same), "both write")
    assert not Path(same).exists()


@pytest.mark.parametrize("case", ["folder", "parent_is_file", "bad_suffix"])
def test_unwritable_outputs_fail_before_the_simulation(trace: Path, tmp_path: Path, case: str) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    target = {"folder": ("--report-html", str(tmp_path)),
              "parent_is_file": ("--report-json", str(blocker / "r.json")),
              "bad_suffix": ("--requests-out", str(tmp_path / "r.csv"))}[case]
    text = user_error(run(str(trace), *target), target[0])
    assert "Time to First Token" not in text  # nothing was simulated


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_fails_before_the_simulation(trace: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        text = user_error(run(str(trace), "--report-json", str(ro / "r.json")), "--report-json", "cannot write")
        assert "Time to First Token" not in text
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("name", ["../escape.html", "/tmp/abs.html", "a/../../escape.html"])
def test_report_filename_stays_in_planner_reports(trace: Path, tmp_path: Path, name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    planner = json.dumps({**PLANNER, "report_filename": name})
    user_error(run(str(trace), "--planner-config", planner), "report_filename", "planner_reports")
    assert not (tmp_path / "escape.html").exists()


def test_report_filename_may_use_a_sub_folder(trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    planner = json.dumps({**PLANNER, "report_filename": "runs/r.html"})
    res = run(str(trace), "--planner-config", planner, "--quiet")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "planner_reports" / "runs" / "r.html").stat().st_size > 0


def test_a_failed_write_keeps_the_previous_file(trace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outputs go through a temporary file and a rename: a write that fails half-way (disk full) leaves the
    previous good file, and no temporary file behind."""
    from llmreplay.metrics.records import RequestRecords

    out = tmp_path / "x.jsonl"
    out.write_text("previous good records\n")

    def full_disk(self: RequestRecords, path: Path) -> None:
        path.write_text("half a fi")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RequestRecords, "write", full_disk)
    user_error(run(str(trace), "--requests-out", str(out), "--quiet"), "--requests-out", "No space left")
    assert out.read_text() == "previous good records\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.jsonl", "x.jsonl"]


def test_markup_characters_in_paths_are_shown_as_typed(trace: Path, tmp_path: Path) -> None:
    odd = tmp_path / "[red]runs[/]" / "a[b].jsonl"
    odd.parent.mkdir(parents=True)
    shutil.copy(trace, odd)
    report = tmp_path / "[bold]r[/bold].json"
    res = run(str(odd), "--report-json", str(report))
    assert res.exit_code == 0, res.output
    assert str(odd) in res.output.replace("\n", "")
    assert str(report) in res.output.replace("\n", "")
    missing = tmp_path / "[bold]missing[/].jsonl"
    user_error(run(str(missing)), "[bold]missing[/].jsonl")


def test_non_utf8_and_broken_config_files_exit_2(trace: Path, tmp_path: Path) -> None:
    latin = tmp_path / "run.yaml"
    latin.write_bytes("seed: 1 # café\n".encode("latin-1"))
    user_error(run(str(trace), "--config", str(latin)), "run.yaml", "UTF-8")
    engine = tmp_path / "engine.json"
    engine.write_text('{"block_size": 16,')
    user_error(run(str(trace), "--extra-engine-args", str(engine)), "engine.json", "JSON")


def test_synth_checks_its_output_first_and_writes_atomically(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    res = CliRunner().invoke(app, ["synth", "poisson", "--num-requests", "10", "-o", str(blocker / "t.jsonl")])
    user_error(res, "--output", "is a file")
    res = CliRunner().invoke(app, ["synth", "poisson", "--rate", "1e-300", "--num-requests", "10", "-o",
                                   str(tmp_path / "t.jsonl")])
    user_error(res, "--rate")
    res = CliRunner().invoke(app, ["synth", "poisson", "--num-requests", "10", "-o", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "t.jsonl"]


def test_every_command_shows_bracketed_names_as_typed(trace: Path, tmp_path: Path) -> None:
    """trace-stats, compare and report print user paths and names: none may be eaten as console markup."""
    odd = tmp_path / "[red]t[b].jsonl"
    shutil.copy(trace, odd)
    res = CliRunner().invoke(app, ["trace-stats", str(odd)], terminal_width=300)
    assert res.exit_code == 0, res.output
    assert "[red]t[b].jsonl" in res.output
    a, b = tmp_path / "a[b].json", tmp_path / "c[i].json"
    for p in (a, b):
        assert run(str(odd), "--report-json", str(p), "--quiet").exit_code == 0
    res = CliRunner().invoke(app, ["compare", str(a), str(b)], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "a[b]" in res.output and "c[i]" in res.output
    html = tmp_path / "h[i].html"
    res = CliRunner().invoke(app, ["report", str(a), "-o", str(html)], terminal_width=300)
    assert res.exit_code == 0, res.output
    assert str(html) in res.output.replace("\n", "")


def test_report_refuses_to_overwrite_its_input(trace: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    assert run(str(trace), "--report-json", str(report), "--quiet").exit_code == 0
    before = report.read_bytes()
    user_error(CliRunner().invoke(app, ["report", str(report), "-o", str(report)]), "run report being read")
    assert report.read_bytes() == before
