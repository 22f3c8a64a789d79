"""``llmreplay run``: resolve flags + config file, replay with a progress bar, print and write results."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from llmreplay.baselines import BaselineOptions, compute_baselines, console_lines
from llmreplay.config import RunConfig, build_run_config, read_mapping_file
from llmreplay.errors import InputError
from llmreplay.outputs import plan_outputs
from llmreplay.report.model import Baselines
from llmreplay.report.table import print_summary
from llmreplay.runner import RunOutput, prepare_trace, run, write_outputs
from llmreplay.units import NS_PER_S


def resolve_config(flags: dict[str, Any], config_file: Path | None, demo: bool) -> RunConfig:
    values: dict[str, Any] = {}
    base_dir = None
    if config_file is not None:
        if not config_file.exists():
            raise InputError(f"--config {config_file}: no such file.")
        values = read_mapping_file(config_file, "--config")
        base_dir = config_file.resolve().parent
        cfg_file_values = build_run_config(values, source=str(config_file), base_dir=base_dir)
        values = cfg_file_values.model_dump(exclude_unset=True)
    if demo:
        if flags.get("trace") or values.get("trace"):
            raise InputError("--demo replays the bundled trace: do not also give a trace file.")
        from llmreplay.trace import demo_trace_path

        flags = {**flags, "trace": str(demo_trace_path())}
    merged = {**values, **flags}
    return build_run_config(merged, source="llmreplay run")


JSON_OPTIONS = ("extra_engine_args", "prefill_engine_args", "decode_engine_args", "planner_config", "router_config")


def input_files(flags: dict[str, Any], config_file: Path | None) -> tuple[Path, ...]:
    """Files named on the command line that the run reads (besides the trace): no output may replace them."""
    files = [config_file] if config_file is not None else []
    for key in JSON_OPTIONS:
        value = flags.get(key)
        if isinstance(value, str) and not value.strip().startswith("{"):
            files.append(Path(value.strip().removeprefix("@")))
    return tuple(files)


def execute_run(flags: dict[str, Any], config_file: Path | None, demo: bool, *, quiet: bool, progress: bool,
                console: Console, baselines: BaselineOptions | None = None) -> RunOutput:
    cfg = resolve_config(flags, config_file, demo)
    plan = plan_outputs(cfg, input_files(flags, config_file))  # before simulating: fail fast, clobber nothing
    if baselines is not None:
        baselines.check()
    show_bar = progress and sys.stdout.isatty()
    if show_bar:
        trace = prepare_trace(cfg)
        end_s = max(float(trace.arrival_ns.max()) / NS_PER_S, 1.0)
        with Progress(TextColumn("[bold]replaying[/]"), BarColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("", total=end_s)

            def tick(t_ns: int, finished: int) -> None:
                t = t_ns / NS_PER_S
                desc = f"sim {t:,.0f}/{end_s:,.0f} s · {finished:,} done"
                bar.update(task, completed=min(t, end_s), description=desc)

            result = run(cfg, trace=trace, progress=tick)
    else:
        result = run(cfg)
    if not quiet:
        for line in result.header:
            console.print(line, highlight=False, markup=False)
        for w in result.warnings:
            console.print(f"[yellow]note:[/] {escape(w)}", highlight=False)
    print_summary(result.model, console)
    if baselines is not None and result.model.planner is not None:
        add_baselines(cfg, result, baselines, console, show_status=progress and sys.stdout.isatty())
    for line in write_outputs(cfg, result, plan):
        console.print(line, highlight=False, markup=False)
    return result


def add_baselines(cfg: RunConfig, result: RunOutput, options: BaselineOptions, console: Console,
                  show_status: bool) -> None:
    """Replay the baselines of a planner run, put them in the report and print them."""
    if show_status:
        with console.status("replaying baselines (best fixed fleet, hindsight schedule)…"):
            block = compute_baselines(cfg, result.trace, result.report, options)
    else:
        block = compute_baselines(cfg, result.trace, result.report, options)
    result.model.baselines = Baselines.model_validate(block)
    result.report = result.model.to_json_dict()
    for line in console_lines(block):
        console.print(line, highlight=False)
