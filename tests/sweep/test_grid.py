"""Sweep files and grid expansion: ranges without float drift, the cartesian product in a fixed order, stable
ids, and every mistake caught before any point runs (exit 2, nothing written)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sweeputil import BASE, llmreplay, write_sweep

from llmreplay.errors import InputError
from llmreplay.sweep import expand, load_sweep, parse_range
from llmreplay.sweep.grid import point_configs


def test_range_is_inclusive_and_exact() -> None:
    assert parse_range("0..300 step 10", "x") == list(range(0, 301, 10))
    assert parse_range("1..3", "x") == [1, 2, 3]
    assert parse_range("5..1 step -2", "x") == [5, 3, 1]
    # no accumulated float error: 0.1 * 3 is 0.3, not 0.30000000000000004
    assert parse_range("0..1 step 0.1", "x") == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    # stop is included only when it lands on the grid
    assert parse_range("0..1 step 0.3", "x") == [0.0, 0.3, 0.6, 0.9]
    assert parse_range("0.5..2 step 0.5", "x") == [0.5, 1.0, 1.5, 2.0]


@pytest.mark.parametrize("text", ["0..300 stp 10", "0-300", "3..1 step 1", "0..1 step 0", "0..1e9 step 1"])
def test_bad_ranges_are_input_errors(text: str) -> None:
    with pytest.raises(InputError):
        parse_range(text, "axes.x")


def test_cartesian_product_order_seeds_and_stable_ids(tmp_path: Path) -> None:
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": "0..20 step 10", "num_workers": [1, 2]},
                    repeats=2, base={**BASE, "seed": 7})
    points = expand(load_sweep(f))
    assert len(points) == 3 * 2 * 2
    assert [(p.overrides["extra_engine_args.startup_time"], p.overrides["num_workers"], p.seed) for p in points[:5]] \
        == [(0, 1, 7), (0, 1, 8), (0, 2, 7), (0, 2, 8), (10, 1, 7)]
    assert [p.index for p in points] == list(range(12))
    assert len({p.id for p in points}) == 12
    # the overrides land in the run config; the rest of the base is untouched
    p = points[4]
    assert p.values["extra_engine_args"] == {**BASE["extra_engine_args"], "startup_time": 10}
    assert p.values["arrival_jitter"] == BASE["arrival_jitter"]
    # ids depend on overrides + seed only: an edited base keeps them (resume finds its points) but changes the
    # config hash (a stale result is run again)
    edited = expand(load_sweep(write_sweep(tmp_path, {"extra_engine_args.startup_time": "0..20 step 10",
                                                      "num_workers": [1, 2]},
                                           repeats=2, base={**BASE, "seed": 7, "max_requests": 60})))
    assert [q.id for q in edited] == [q.id for q in points]
    assert all(q.config_hash != r.config_hash for q, r in zip(edited, points, strict=True))
    # a refined range shares the ids of the points it has in common (10 and 10.0 hash alike)
    finer = expand(load_sweep(write_sweep(tmp_path, {"extra_engine_args.startup_time": "0..20 step 2.5",
                                                     "num_workers": [1, 2]}, repeats=2,
                                          base={**BASE, "seed": 7})))
    assert {q.id for q in points} <= {q.id for q in finer}


def test_axis_creates_missing_objects_and_every_point_validates(tmp_path: Path) -> None:
    f = write_sweep(tmp_path, {"planner_config.ttft": [100, 300]})
    sweep = load_sweep(f)
    points = expand(sweep)
    cfgs = point_configs(sweep, points)
    assert [c.planner_config for c in cfgs] == [{"ttft": 100}, {"ttft": 300}]


@pytest.mark.parametrize(("doc", "message"), [
    ({"base": BASE, "axis": {"num_workers": [1]}}, "unknown key 'axis'"),
    ({"base": BASE, "axes": {}}, "'axes' is missing or empty"),
    ({"base": BASE, "axes": {"num_worker": [1, 2]}}, "'num_worker' is not a run config field"),
    ({"base": BASE, "axes": {"num_workers.x": [1, 2]}}, "has no sub-key 'x'"),
    ({"base": BASE, "axes": {"report_json": ["a.json"]}}, "is not a run config field"),
    ({"base": BASE, "axes": {"num_workers": [1, 1]}}, "appears twice"),
    ({"base": BASE, "axes": {"num_workers": 3}}, "expected a non-empty list"),
    ({"base": {**BASE, "report_json": "r.json"}, "axes": {"num_workers": [1]}}, "writes each point's outputs"),
    ({"base": {**BASE, "num_wrkers": 2}, "axes": {"num_workers": [1]}}, "unknown key 'num_wrkers'"),
    ({"base": BASE, "axes": {"extra_engine_args.perf_model.step_ms": [1, 2]}}, None),
])
def test_sweep_file_errors_name_the_key(tmp_path: Path, doc: dict[str, object], message: str | None) -> None:
    import yaml

    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(doc))
    if message is None:
        assert len(expand(load_sweep(f))) == 2
        return
    with pytest.raises(InputError, match=message):
        sweep = load_sweep(f)
        point_configs(sweep, expand(sweep))


def test_a_typo_in_any_point_exits_2_before_anything_runs(tmp_path: Path) -> None:
    # the bad key only appears in the last point: all points are checked first, so nothing is written
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0, 10],
                               "planner_config": [{"mode": "agg", "ttft": 300}, {"mode": "agg", "ttf": 300}]})
    out = llmreplay("sweep", str(f), "--out", str(tmp_path / "out"))
    assert out.returncode == 2
    assert "unknown key 'ttf'" in out.stderr and "point 1" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()


def test_relative_trace_resolves_against_the_sweep_file(tmp_path: Path) -> None:
    shutil.copy(BASE["trace"], tmp_path / "demo.jsonl")
    f = write_sweep(tmp_path / "study", {"num_workers": [1, 2]}, base={**BASE, "trace": "../demo.jsonl"})
    sweep = load_sweep(f)
    cfgs = point_configs(sweep, expand(sweep))
    assert cfgs[0].trace == str(tmp_path / "study" / ".." / "demo.jsonl")
