"""The FPM log keeps what its readers need: every column until the planner has read a record, then only the
columns the run report reads; with no planner in the run, only those from the start."""

from __future__ import annotations

import pytest

from llmreplay import runner
from llmreplay.config import RunConfig
from llmreplay.engine.fpm import FPM_COLUMNS, PLANNER_COLUMNS, REPORT_COLUMNS, FpmLog
from llmreplay.trace import demo_trace_path


def record(i: int) -> tuple[int, ...]:
    return tuple(100 * i + c for c in range(len(FPM_COLUMNS)))


def test_planner_reads_each_record_once_and_the_report_keeps_its_columns() -> None:
    log = FpmLog(0)
    for i in range(3):
        log.append(*record(i))
    first = log.read_since(0)
    assert set(first) == set(FPM_COLUMNS)
    assert list(first["steps"]) == [100 * i + FPM_COLUMNS.index("steps") for i in range(3)]
    assert all(len(log.cols[c]) == 0 for c in PLANNER_COLUMNS)  # read: let go
    for i in range(3, 5):
        log.append(*record(i))
    second = log.read_since(3)
    assert list(second["decode_kv_last"]) == [100 * i + FPM_COLUMNS.index("decode_kv_last") for i in (3, 4)]
    assert list(second["t_end_ns"]) == [100 * i + 1 for i in (3, 4)]
    with pytest.raises(ValueError, match="already read"):
        log.read_since(1)
    arrays = log.to_arrays()
    assert set(arrays) == set(REPORT_COLUMNS) and arrays["kv_used_blocks"].tolist() == [
        100 * i + FPM_COLUMNS.index("kv_used_blocks") for i in range(5)]


def test_without_a_planner_only_the_report_columns_are_stored() -> None:
    log = FpmLog(0, planner_detail=False)
    log.append(*record(0))
    assert set(log.cols) == set(REPORT_COLUMNS) and len(log) == 1
    with pytest.raises(RuntimeError, match="no planner"):
        log.read_since(0)


def test_a_run_without_planner_keeps_only_report_columns() -> None:
    out = runner.run(RunConfig(trace=str(demo_trace_path()), max_requests=60, num_workers=2))
    engines = [w.engine for p in out.result.pools.values() for w in p.workers]
    assert all(set(e.fpm.cols) == set(REPORT_COLUMNS) and len(e.fpm) > 0 for e in engines)
    assert out.report["pools"]["agg"]["steps"] > 0
