"""A whole sweep: check every point, skip the ones already done, run the rest, record each as it finishes.

Recording order makes resume exact: a point's report file is written first, then its row; a point counts as
done only once its row (status ``ok``, same ``config_hash``) is in the table. A sweep killed at any moment
therefore re-runs only the points that were in flight, and never loses a recorded one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmreplay.config import RunConfig
from llmreplay.sweep.chart import write_chart
from llmreplay.sweep.executors import Executor, PointTask, Traces, make_executor, trace_key
from llmreplay.sweep.grid import Point, expand, point_configs
from llmreplay.sweep.lock import folder_lock, signals_deferred, terminate_as_interrupt
from llmreplay.sweep.results import HtmlWriter, ResultStore, axis_cells, html_writer, make_row
from llmreplay.sweep.spec import Sweep, load_sweep
from llmreplay.trace import load_trace

#: called once before running: (points in the grid, points already done, points to run)
OnStart = Callable[[int, int, int], None]
#: called after each point is recorded, with its point and row
OnResult = Callable[[Point, dict[str, Any]], None]


@dataclass
class SweepOutcome:
    sweep: Sweep
    #: one row per grid point, in grid order
    rows: list[dict[str, Any]]
    table_path: Path
    chart_path: Path
    ran: int
    skipped: int
    #: rows of an earlier run into the same folder that are not points of this grid (dropped from the table)
    dropped: int
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.rows if r.get("status") != "ok")


def default_jobs() -> int:
    return os.cpu_count() or 1


def run_sweep(sweep_file: Path, out_dir: Path, *, executor: str = "local", jobs: int | None = None,
              address: str | None = None, on_start: OnStart | None = None,
              on_result: OnResult | None = None, max_points: int | None = None) -> SweepOutcome:
    """Run (or resume) the sweep in ``sweep_file`` into ``out_dir``. ``max_points`` overrides the sweep file's
    cap on the grid size. Holds ``out_dir``'s lock throughout; SIGTERM stops it as Ctrl-C does
    (:class:`~llmreplay.sweep.lock.Terminated`, a KeyboardInterrupt), keeping every recorded point."""
    sweep = load_sweep(sweep_file)
    points = expand(sweep, max_points)
    configs = point_configs(sweep, points)
    run_points = make_executor(executor, jobs if jobs is not None else default_jobs(), address)
    write_html = html_writer() if sweep.spec.report_html else None
    with terminate_as_interrupt(), folder_lock(out_dir):
        return _run_locked(sweep, points, configs, run_points, write_html, out_dir, on_start, on_result)


def _run_locked(sweep: Sweep, points: list[Point], configs: list[RunConfig], run_points: Executor,
                write_html: HtmlWriter | None, out_dir: Path, on_start: OnStart | None,
                on_result: OnResult | None) -> SweepOutcome:
    store = ResultStore(out_dir)
    rows, done, dropped = _earlier_results(store, points)
    todo = [PointTask(p.index, p.id, cfg) for p, cfg in zip(points, configs, strict=True) if p.id not in done]
    traces = _load_traces(todo)
    if on_start is not None:
        on_start(len(points), len(done), len(todo))
    cells = axis_cells(sweep.axes)

    def ordered() -> list[dict[str, Any]]:
        return [rows[p.id] for p in points if p.id in rows]

    if dropped:
        store.write(ordered())
    ran = 0
    # closing(): on Ctrl-C or a raising callback, stop the pool now, not when the traceback is collected
    with closing(run_points(todo, traces)) as results:
        for result in results:
            point = points[result.index]
            if result.report_json is not None:
                store.write_point(point.id, result.report_json)
                if write_html is not None:
                    write_html(json.loads(result.report_json), store.points_dir / f"{point.id}.html")
            row = make_row(point, result, cells)
            rows[point.id] = row
            with signals_deferred():  # written and counted together
                store.write(ordered())
                ran += 1
                if on_result is not None:
                    on_result(point, row)
    final = ordered()
    if not store.path.exists():
        store.write(final)
    chart = write_chart(out_dir / "sweep.html", final, sweep)
    notes = []
    if dropped:
        notes.append(f"{dropped} row(s) of the earlier results in {out_dir} are not points of this sweep; "
                     "dropped from the table (their reports stay in points/).")
    return SweepOutcome(sweep, final, store.path, chart, ran, len(done), dropped, notes)


def _earlier_results(store: ResultStore, points: list[Point]) -> tuple[dict[str, dict[str, Any]], set[str], int]:
    """Rows of an earlier run that belong to this grid (by id), the ids among them that are done (ok, same
    config), and how many earlier rows belong to another grid. Failed and stale rows stay until re-run, so an
    interrupted re-run does not lose their record."""
    by_id = {p.id: p for p in points}
    earlier = store.load()
    rows = {r["id"]: r for r in earlier if r.get("id") in by_id}
    done = {pid for pid, r in rows.items()
            if r.get("status") == "ok" and r.get("config_hash") == by_id[pid].config_hash}
    return rows, done, len(earlier) - len(rows)


def _load_traces(tasks: list[PointTask]) -> Traces:
    """Each distinct trace file once (a missing file fails here, before any point runs)."""
    traces: Traces = {}
    for t in tasks:
        key = trace_key(t.cfg)
        if key not in traces:
            traces[key] = load_trace(*key)
    return traces
