"""``llmreplay sweep``: run a sweep file with a progress bar over points, then print the results table.

Everything but presentation lives in :mod:`llmreplay.sweep`; this module decides what the user sees: a bar
with ETA on a terminal, one line per finished point in a log, and a final table either way.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from llmreplay.sweep.driver import SweepOutcome, default_jobs, run_sweep
from llmreplay.sweep.grid import Point
from llmreplay.sweep.lock import Terminated, sigterm_received

#: (header, column, format) of the final table, after the axis columns
TABLE: tuple[tuple[str, str, str], ...] = (
    ("TTFT avg", "ttft_ms.avg", ",.0f"),
    ("TTFT p90", "ttft_ms.p90", ",.0f"),
    ("ITL avg", "itl_ms.avg", ",.1f"),
    ("ITL p90", "itl_ms.p90", ",.1f"),
    ("SLA att.", "sla.attainment", ".1%"),
    ("GPU-h", "cost.gpu_hours", ",.2f"),
    ("kWh", "cost.energy_kwh", ",.2f"),
    ("transitions", "cost.replica_transitions", "d"),
    ("reversals", "cost.reversals", "d"),
)
EXIT_INTERRUPTED = 130


def execute_sweep(sweep_file: Path, out_dir: Path, *, jobs: int | None, executor: str, address: str | None,
                  progress: bool, quiet: bool, console: Console, max_points: int | None = None) -> SweepOutcome:
    """Run the sweep; print progress and the final table. Ctrl-C exits 130 with a resume hint."""
    jobs = jobs if jobs is not None else default_jobs()
    show_bar = progress and sys.stdout.isatty()
    bar = Progress(TextColumn("[bold]sweep[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True)
    task = bar.add_task("", total=None)
    state = {"done": 0, "todo": 0}

    def on_start(total: int, skipped: int, todo: int) -> None:
        state["todo"] = todo
        where = f"local, {jobs} job(s)" if executor == "local" else f"ray ({address or f'local, {jobs} CPUs'})"
        if not quiet:
            skip = f", {skipped} already done in {out_dir} (skipped)" if skipped else ""
            console.print(f"sweep: {total} point(s){skip}; running {todo} on {where}", highlight=False)
        bar.update(task, total=todo)
        if show_bar and todo:
            bar.start()

    def on_result(point: Point, row: dict[str, Any]) -> None:
        state["done"] += 1
        status = "ok" if row["status"] == "ok" else "[red]failed[/]"
        bar.update(task, advance=1, description=f"last: {point.describe()} {status}")
        if not show_bar and not quiet:
            wall = row.get("sim.wall_s")
            console.print(f"[{state['done']}/{state['todo']}] {point.describe()}: {status}"
                          + (f" ({wall:.2f} s)" if isinstance(wall, float) else ""), highlight=False)

    try:
        outcome = run_sweep(sweep_file, out_dir, executor=executor, jobs=jobs, address=address, on_start=on_start,
                            on_result=on_result, max_points=max_points)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated)
        _stop(bar)
        terminated = isinstance(exc, Terminated) or sigterm_received()
        console.print(f"{'terminated' if terminated else 'interrupted'}: {state['done']} point(s) recorded this "
                      f"time in {out_dir}; run the same command again to resume.", highlight=False)
        raise typer.Exit(Terminated.exit_code if terminated else EXIT_INTERRUPTED) from None
    finally:
        _stop(bar)
    console.print(results_table(outcome))
    for note in outcome.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    for row in outcome.rows:
        if row.get("status") != "ok":
            console.print(f"[red]point {row['point']} ({row['id']}) failed:[/] {row.get('error')}", highlight=False)
    console.print(f"results: {outcome.table_path} ({len(outcome.rows)} rows; ran {outcome.ran}, "
                  f"skipped {outcome.skipped}, failed {outcome.failed})", highlight=False)
    console.print(f"chart: {outcome.chart_path}", highlight=False)
    return outcome


def results_table(outcome: SweepOutcome) -> Table:
    """The swept values and headline metrics of every point, in grid order."""
    t = Table(title=f"llmreplay | sweep {Path(outcome.sweep.source).name}", title_justify="left")
    axes = outcome.sweep.axes
    for a in axes:
        t.add_column(a.label, justify="right", min_width=len(a.label))
    repeats = outcome.sweep.spec.repeats > 1
    if repeats:
        t.add_column("seed", justify="right")
    for header, _, _ in TABLE:
        t.add_column(header, justify="right")
    t.add_column("status")
    for row in outcome.rows:
        cells = [str(row.get(a.path)) for a in axes] + ([str(row.get("seed"))] if repeats else [])
        cells += [format_cell(row.get(col), fmt) for _, col, fmt in TABLE]
        cells.append("ok" if row.get("status") == "ok" else "[red]failed[/]")
        t.add_row(*cells)
    return t


def _stop(bar: Progress) -> None:
    """Stop the bar if it was started (stopping one that never started prints a stray blank line)."""
    if bar.live.is_started:
        bar.stop()


def format_cell(v: Any, fmt: str) -> str:
    """One table cell: a number in its column's format, "—" when it does not apply."""
    if v is None:
        return "—"
    if fmt == "d":
        return f"{int(v):,}"
    return format(v, fmt)
