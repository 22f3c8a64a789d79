"""Resume and failure: an interrupted sweep, re-run, runs each missing point once and keeps every recorded one;
a failing point is a row with its error (exit 3), not the end of the sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sweeputil import BASE, llmreplay, read_table, without_wall, write_sweep

from llmreplay.sweep import Point, run_sweep
from llmreplay.sweep import results as results_mod


class Stop(Exception):
    """Raised by the test hook to interrupt a sweep after k recorded points."""


def test_interrupted_sweep_resumes_without_rerunning_or_losing_points(tmp_path: Path) -> None:
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": "0..30 step 10", "num_workers": [1, 2]})
    out = tmp_path / "out"
    first: list[str] = []

    def stop_after_3(point: Point, row: dict[str, Any]) -> None:
        first.append(point.id)
        if len(first) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(f, out, jobs=2, on_result=stop_after_3)
    recorded = read_table(out)
    assert sorted(r["id"] for r in recorded) == sorted(first)
    mtimes = {pid: (out / "points" / f"{pid}.json").stat().st_mtime_ns for pid in first}

    second: list[str] = []
    outcome = run_sweep(f, out, jobs=2, on_result=lambda p, r: second.append(p.id))
    assert outcome.skipped == 3 and outcome.ran == 5
    assert not set(first) & set(second), "a recorded point ran again"
    all_ids = [r["id"] for r in outcome.rows]
    assert sorted(first + second) == sorted(all_ids), "a point was lost or run twice"
    assert [r["point"] for r in read_table(out)] == list(range(8))
    # the recorded rows and reports are the first run's, untouched (their wall times are the witness)
    final = {r["id"]: r for r in read_table(out)}
    for r in recorded:
        assert final[r["id"]] == r
        assert (out / "points" / f"{r['id']}.json").stat().st_mtime_ns == mtimes[r["id"]]
    # a third run has nothing to do
    assert run_sweep(f, out, jobs=2).ran == 0


def test_killed_cli_resumes(tmp_path: Path) -> None:
    """SIGKILL the whole process group (driver and pool) once the first row is in; the re-run completes it."""
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": "0..150 step 10"},
                    base={**BASE, "max_requests": 400})
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "llmreplay", "sweep", str(f), "--out", str(out), "--jobs", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    table = out / "results.parquet"
    deadline = time.monotonic() + 60
    while not table.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_table(out)
    assert 1 <= len(before) < 16, "the sweep should have been killed mid-way"
    again = llmreplay("sweep", str(f), "--out", str(out), "--jobs", "2", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert f"{len(before)} already done" in again.stdout
    assert f"ran {16 - len(before)}, skipped {len(before)}" in again.stdout
    after = read_table(out)
    assert [r["point"] for r in after] == list(range(16))
    assert len({r["id"] for r in after}) == 16
    by_id = {r["id"]: r for r in after}
    assert all(by_id[r["id"]] == r for r in before)  # recorded rows kept as they were, not re-run
    assert all(r["status"] == "ok" for r in after)


def test_a_failing_point_is_recorded_and_retried_on_resume(tmp_path: Path) -> None:
    # start=100000 s is past the end of the demo trace: that point has no request left and fails
    f = write_sweep(tmp_path, {"start": [0, 100000, 10]})
    out = tmp_path / "out"
    res = llmreplay("sweep", str(f), "--out", str(out), "--jobs", "2", "--no-progress")
    assert res.returncode == 3, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    rows = read_table(out)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert "no request is left after slicing" in rows[1]["error"]
    assert rows[1]["ttft_ms.avg"] is None and rows[0]["ttft_ms.avg"] > 0
    assert not (out / "points" / f"{rows[1]['id']}.json").exists()
    assert (out / "sweep.html").exists()
    # resume: the ok points are skipped, the failed one is tried again (and fails again)
    again: list[str] = []
    outcome = run_sweep(f, out, jobs=1, on_result=lambda p, r: again.append(p.id))
    assert again == [rows[1]["id"]] and outcome.failed == 1


def test_csv_when_pyarrow_is_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results_mod, "have_pyarrow", lambda: False)
    f = write_sweep(tmp_path, {"num_workers": [1, 2]}, repeats=2)
    out = tmp_path / "out"
    first = run_sweep(f, out, jobs=2)
    assert (out / "results.csv").exists() and not (out / "results.parquet").exists()
    again = run_sweep(f, out, jobs=2)
    assert again.ran == 0 and again.skipped == 4
    assert without_wall(again.rows) == without_wall(json.loads(json.dumps(first.rows)))


def test_an_edited_base_reruns_stale_points(tmp_path: Path) -> None:
    out = tmp_path / "out"
    f = write_sweep(tmp_path, {"num_workers": [1, 2]})
    run_sweep(f, out, jobs=1)
    write_sweep(tmp_path, {"num_workers": [1, 2, 3]}, base={**BASE, "max_requests": 60})
    outcome = run_sweep(f, out, jobs=1)
    assert outcome.ran == 3 and outcome.skipped == 0
    assert [r["requests.total"] for r in outcome.rows] == [60, 60, 60]
