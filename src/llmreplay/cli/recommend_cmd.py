"""``llmreplay recommend``: search a space of deployments for the cheapest one meeting the SLA goal, then print
the ranked table (or ``--json``) and write the answer files. The search itself is :mod:`llmreplay.recommend`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmreplay.cli.sweep_cmd import format_cell
from llmreplay.config import load_json_option
from llmreplay.cost.prices import load_gpu_prices
from llmreplay.recommend.answer import TABLE, as_json, ranked, write_outputs
from llmreplay.recommend.search import Evaluation, SearchOutcome, recommend
from llmreplay.recommend.space import load_space
from llmreplay.sweep.driver import default_jobs

#: no deployment of the space meets the goal (the outputs are still written)
EXIT_NO_ANSWER = 3
#: Ctrl-C (as ``llmreplay sweep``)
EXIT_INTERRUPTED = 130
#: rows of the console table (the JSON and the parquet have all)
TABLE_ROWS = 15


def execute_recommend(trace: str, *, sla_ttft_ms: float, sla_itl_ms: float, extra_engine_args: str | None,
                      goal: float, space_file: Path | None, gpu_prices: Path | None, executor: str,
                      jobs: int | None, out_dir: Path | None, as_json_out: bool, progress: bool,
                      console: Console) -> SearchOutcome:
    engine_args = load_json_option(extra_engine_args, "--extra-engine-args") or {}
    space = load_space(space_file)
    prices = load_gpu_prices(gpu_prices)
    jobs = jobs if jobs is not None else default_jobs()
    show_bar = progress and not as_json_out and sys.stdout.isatty()
    log = progress and not as_json_out and not show_bar
    bar = Progress(TextColumn("[bold]recommend[/]"), BarColumn(), TextColumn("{task.completed} replays"),
                   TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True)
    task = bar.add_task("", total=None)

    def on_round(stage: str, n: int) -> None:
        what = "screening on a window" if stage == "screen" else "confirming on the whole trace"
        bar.update(task, description=f"{what}: {n} in this round")
        if log:
            console.print(f"recommend: {what}, {n} replay(s)", highlight=False)

    def on_result(ev: Evaluation) -> None:
        bar.update(task, advance=1)

    if show_bar:
        bar.start()
    try:
        outcome = recommend(trace, sla_ttft_ms=sla_ttft_ms, sla_itl_ms=sla_itl_ms, engine_args=engine_args,
                            space=space, prices=prices, goal=goal, executor=executor, jobs=jobs,
                            cache_dir=out_dir / "runs" if out_dir is not None else None, on_result=on_result,
                            on_round=on_round)
    except KeyboardInterrupt:
        where = f"; the finished replays are kept in {out_dir / 'runs'}: run the same command again to resume" \
            if out_dir is not None else " (give --out DIR to make a search resumable)"
        console.print(f"interrupted{where}.", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    finally:
        if bar.live.is_started:
            bar.stop()
    files = write_outputs(out_dir, outcome) if out_dir is not None else []
    if as_json_out:
        console.print_json(json.dumps(as_json(outcome), allow_nan=False))
    else:
        _print_answer(outcome, files, console)
    if outcome.winner is None:
        if not as_json_out:
            console.print(f"[red]no deployment in the space meets {goal:.0%} SLA attainment[/]; widen the space "
                          "(more workers, GPUs, fp8 weights) or relax the SLA.", highlight=False)
        raise typer.Exit(EXIT_NO_ANSWER)
    return outcome


def _print_answer(outcome: SearchOutcome, files: list[str], console: Console) -> None:
    s = outcome.stats
    rows = ranked(outcome)
    console.print(results_table(rows[:TABLE_ROWS], outcome.goal))
    if len(rows) > TABLE_ROWS:
        console.print(f"({len(rows) - TABLE_ROWS} more whole-trace candidates in --json and candidates.parquet)")
    window = f" on a {s.screen_window[1]:.0f} s window at {s.screen_window[0]:.0f} s" if s.screen_window else ""
    console.print(f"search: {s.space} deployments in the space; {s.replays['screen']} screening replays{window}, "
                  f"{s.replays['full']} whole-trace replays, {s.cached} read from the cache; {s.inferred} decided "
                  f"by monotonicity, {s.pruned_by_cost} pruned by cost; {s.rounds} rounds", highlight=False)
    if outcome.winner is not None:
        w = outcome.winner
        console.print(f"[bold green]winner:[/] {w.deployment.label()} · ${w.cost_per_hour:,.2f}/h · "
                      f"attainment {w.attainment:.1%}", highlight=False)
    for line in files:
        console.print(line, highlight=False)
    for note in outcome.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def results_table(rows: list[dict[str, Any]], goal: float) -> Table:
    """Best first; the winner starred, attainments below the goal in red ($/M output tokens, J per output token
    and the rest are in --json and candidates.parquet)."""
    t = Table(title=f"llmreplay | recommend (goal: {goal:.0%} SLA attainment; ★ winner, red: goal missed)",
              title_justify="left", box=box.SIMPLE_HEAD)
    t.add_column("#", justify="right")
    t.add_column("deployment", no_wrap=True)
    for _, header, _ in TABLE:
        t.add_column(header, justify="right", no_wrap=True)
    for r in rows:
        cells = [format_cell(r.get(col), fmt) for col, _, fmt in TABLE]
        if not r["meets_goal"]:
            i = [c for c, _, _ in TABLE].index("attainment")
            cells[i] = f"[red]{cells[i]}[/]"
        name = f"[bold]★ {r['short']}[/]" if r["winner"] else r["short"]
        t.add_row(str(r["rank"]), name, *cells)
    return t


