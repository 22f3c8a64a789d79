"""Executors: the same sweep and seeds give the same table whichever executor runs it, with however many jobs,
and the same numbers as running each point in this process."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sweeputil import BASE, PLANNER, read_table, without_wall, write_sweep

from llmreplay.errors import InputError
from llmreplay.runner import run
from llmreplay.sweep import expand, load_sweep, run_sweep
from llmreplay.sweep.executors import make_executor
from llmreplay.sweep.grid import point_configs

#: 2 startup times × 2 worker counts × 2 seeds; the arrival jitter makes the seeds give different numbers
AXES = {"extra_engine_args.startup_time": [0, 30], "num_workers": [1, 2]}


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("local")
    f = write_sweep(folder, AXES, repeats=2, base={**BASE, "planner_config": PLANNER})
    outcome = run_sweep(f, folder / "out", executor="local", jobs=2)
    assert outcome.failed == 0
    return f, read_table(folder / "out")


def test_local_jobs_do_not_change_results(local_rows: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    f, rows = local_rows
    assert [r["point"] for r in rows] == list(range(8))
    assert rows[0]["sla.attainment"] != rows[1]["sla.attainment"] or rows[0]["ttft_ms.avg"] != rows[1]["ttft_ms.avg"]
    run_sweep(f, tmp_path / "one", executor="local", jobs=1)
    assert without_wall(read_table(tmp_path / "one")) == without_wall(rows)


def test_pool_results_equal_in_process_runs(local_rows: tuple[Path, list[dict[str, Any]]]) -> None:
    f, rows = local_rows
    sweep = load_sweep(f)
    points = expand(sweep)
    for p, cfg, row in zip(points, point_configs(sweep, points), rows, strict=True):
        report = run(cfg).report
        assert row["ttft_ms.p90"] == report["metrics"]["ttft_ms"]["p90"]
        assert row["cost.gpu_hours"] == report["cost"]["gpu_hours"]
        saved = json.loads((f.parent / "out" / "points" / f"{p.id}.json").read_text())
        assert {k: v for k, v in saved.items() if k != "sim"} == json.loads(json.dumps(
            {k: v for k, v in report.items() if k != "sim"}))


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'llmreplay[ray]' to run this test")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_table_as_local(local_ray: Any, local_rows: tuple[Path, list[dict[str, Any]]],
                                           tmp_path: Path) -> None:
    f, rows = local_rows
    outcome = run_sweep(f, tmp_path / "ray", executor="ray", jobs=2)
    assert outcome.ran == 8 and outcome.failed == 0
    assert without_wall(read_table(tmp_path / "ray")) == without_wall(rows)
    for r in rows:
        a = json.loads((f.parent / "out" / "points" / f"{r['id']}.json").read_text())
        b = json.loads((tmp_path / "ray" / "points" / f"{r['id']}.json").read_text())
        a.pop("sim"), b.pop("sim")
        assert a == b
    assert local_ray.is_initialized(), "a Ray instance the caller started is left running"


def test_missing_ray_is_a_clear_input_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(InputError, match=r"pip install 'llmreplay\[ray\]'"):
        make_executor("ray", 2)


@pytest.mark.parametrize(("name", "jobs", "address", "message"), [
    ("dask", 2, None, "must be one of local, ray"),
    ("local", 0, None, "at least 1"),
    ("local", 2, "auto", "--address is for --executor ray"),
])
def test_bad_executor_options(name: str, jobs: int, address: str | None, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_executor(name, jobs, address)


def test_report_html_writes_each_points_report(tmp_path: Path) -> None:
    pytest.importorskip("llmreplay.report.html", reason="this version has no HTML run report")
    f = write_sweep(tmp_path, {"num_workers": [1, 2]}, report_html=True)
    outcome = run_sweep(f, tmp_path / "out", jobs=2)
    for r in outcome.rows:
        page = (tmp_path / "out" / "points" / f"{r['id']}.html").read_text()
        assert page.startswith("<!DOCTYPE html>")
