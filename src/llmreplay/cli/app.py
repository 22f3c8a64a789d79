"""The ``llmreplay`` command line (typer + rich).

Bad input of any kind (trace, config, flags) exits with code 2 and one readable paragraph, never a
traceback; a bug exits 1.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from llmreplay.cli.options import in_range, with_model_options
from llmreplay.config import DEFAULT_TRACE_BLOCK_SIZE, RunConfig
from llmreplay.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])


def report_input_error(exc: InputError) -> None:
    """The one way a user's mistake is shown: one paragraph on stderr, user text escaped (a ``[`` in a path
    must not be read as console markup)."""
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)


def os_error_text(exc: OSError) -> str:
    """A file-system refusal about a path the user gave, which no more specific check caught."""
    return f"{exc.filename}: {exc.strerror or exc}. Check that the path exists and that you may read or write it."


def error_boundary(func: F) -> F:
    """Every command runs inside this: an :class:`InputError` becomes exit code 2 with one paragraph."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            report_input_error(exc)
            raise typer.Exit(2) from None
        except OSError as exc:
            if exc.filename is None:  # not about a path the user gave (a broken pipe, a dead worker): a bug
                raise
            report_input_error(InputError(os_error_text(exc)))
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _flag_metavar(self: typer.core.TyperOption, ctx: Any) -> str | None:
    """A flag takes no value, so its help shows no ``<bool>`` type (typer shows one for every option)."""
    return None if self.is_flag else _typer_display_type(self, ctx)


_typer_display_type = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flag_metavar  # type: ignore[method-assign]


class BoundedTyper(typer.Typer):
    """A Typer whose commands all run inside :func:`error_boundary` (commands added later included)."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[F], F]:
        register = super().command(*args, **kwargs)

        def decorator(func: F) -> F:
            register(error_boundary(func))
            return func

        return decorator


app = BoundedTyper(
    add_completion=False,
    no_args_is_help=True,
    help="Replay LLM request traces against simulated vLLM-style engines: what would my cluster have done?",
    pretty_exceptions_enable=False,
)
# Piped output gets a fixed, wide console so the metrics table never wraps (rich assumes 80 columns otherwise).
out = Console(width=None if sys.stdout.isatty() else 130)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 130)


def _print_version(value: bool) -> None:
    if value:
        from llmreplay import __version__

        out.print(f"llmreplay {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Replay LLM request traces against simulated vLLM-style engines: what would my cluster have done?"""

JSON_HELP = "inline JSON, or a path to a .json/.yaml file (a leading @ is allowed)"


@app.command()
@with_model_options(RunConfig, exclude=("trace",))
def run(
    trace: Annotated[str | None, typer.Argument(help="Mooncake JSONL, Azure CSV or generic CSV/JSONL trace.",
                                                show_default=False)] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Replay the bundled demo trace (Mooncake slice).")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML/JSON file with any of these options (flags win).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the summary.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    baselines: Annotated[bool, typer.Option(help="With a planner: replay the best fixed fleet and the hindsight "
                                                "schedule, and report the planner's regret.")] = True,
    baselines_goal: Annotated[float, typer.Option(help="SLA attainment goal of the baselines (share). Range: > 0, "
                                                  "<= 1.", callback=in_range(0, 1, lo_open=True))] = 0.9,
    baselines_jobs: Annotated[int | None, typer.Option(help="Baseline replays at once (default: CPUs). Range: "
                                                       ">= 1, <= 1024.", callback=in_range(1, 1024))] = None,
    baselines_executor: Annotated[Literal["local", "ray"], typer.Option(help="Where baseline replays run.")
                                  ] = "local",
    baselines_address: Annotated[str | None, typer.Option(help="Ray cluster of the baseline replays (auto, "
                                                          "ray://host:10001); default: a local Ray.")] = None,
    *,
    flags: dict[str, Any],
) -> None:
    """Replay one trace and print AIPerf-style metrics. Every option is also a --config key (see docs/usage.md)."""
    from llmreplay.baselines import BaselineOptions
    from llmreplay.cli.run_cmd import execute_run

    if trace is not None:
        flags["trace"] = trace
    execute_run(flags, config, demo, quiet=quiet, progress=not (no_progress or quiet), console=out,
                baselines=BaselineOptions(baselines_goal, None, baselines_executor, baselines_jobs,
                                          baselines_address) if baselines else None)


@app.command("trace-stats")
def trace_stats_cmd(
    trace: Annotated[str, typer.Argument(help="Trace file.")],
    trace_format: Annotated[str, typer.Option(help="auto | mooncake | azure | csv | jsonl.")] = "auto",
    trace_block_size: Annotated[int, typer.Option(help="Tokens per trace hash block.", min=1)
                                ] = DEFAULT_TRACE_BLOCK_SIZE,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Rate, ISL/OSL percentiles, burstiness and prefix reuse of a trace."""
    from llmreplay.trace import load_trace
    from llmreplay.trace.stats import render_trace_stats, trace_stats

    t = load_trace(trace, trace_format, trace_block_size)
    stats = trace_stats(t)
    if as_json:
        out.print_json(json.dumps(stats))
    else:
        render_trace_stats(stats, out)


@app.command()
def synth(
    kind: Annotated[str, typer.Argument(help="poisson | bursty | agentic")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Write the trace here (Mooncake JSONL).")],
    rate: Annotated[float, typer.Option(help="Mean requests per second.")] = 2.0,
    duration: Annotated[float | None, typer.Option(help="Seconds of traffic.")] = None,
    num_requests: Annotated[int | None, typer.Option(help="Number of requests (instead of --duration).")] = None,
    isl: Annotated[str | None, typer.Option(help="ISL distribution, e.g. fixed:512, uniform:100,2000, "
                                            "normal:3000,500, lognormal:7.5,0.8.")] = None,
    osl: Annotated[str | None, typer.Option(help="OSL distribution (same syntax).")] = None,
    cv: Annotated[float | None, typer.Option(help="bursty: coefficient of variation of inter-arrivals.")] = None,
    seed: Annotated[int, typer.Option(help="Seed. Range: >= 0, <= 4_294_967_295.",
                                      callback=in_range(0, 2**32 - 1))] = 0,
) -> None:
    """Write a synthetic trace: Poisson, bursty (gamma inter-arrivals), or agentic multi-turn sessions."""
    from llmreplay.cli.synth_cmd import execute_synth

    execute_synth(kind, output, rate, duration, num_requests, isl, osl, cv, seed, out)


@app.command()
def compare(
    reports: Annotated[list[Path], typer.Argument(help="Two or more run report JSON files.")],
) -> None:
    """Print run reports side by side."""
    from llmreplay.cli.compare_cmd import execute_compare

    execute_compare(reports, out)


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="Sweep file (YAML): base run config and axes.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for results table, point reports, chart.")
                       ] = Path("sweep_out"),
    jobs: Annotated[int | None, typer.Option(help="Points run at once (default: CPU cores). Range: >= 1; a local "
                                             "pool starts at most 4 per CPU (at least 256).",
                                             callback=in_range(1))] = None,
    executor: Annotated[str, typer.Option(help="local (process pool) | ray (pip install 'llmreplay\\[ray]').")
                        ] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address, e.g. auto (default: local Ray).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print only the final table.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
    max_points: Annotated[int | None, typer.Option(
        min=1, max=10_000_000, help="Most runs the grid may expand to (default: the sweep file's max_points, "
                                    "10,000).")] = None,
) -> None:
    """Replay a grid of configs (local processes or Ray), resumably; table + chart of metrics vs the axes."""
    from llmreplay.cli.sweep_cmd import execute_sweep

    outcome = execute_sweep(sweep_file, out_dir, jobs=jobs, executor=executor, address=address,
                            progress=not (no_progress or quiet), quiet=quiet, console=out, max_points=max_points)
    if outcome.failed:
        raise typer.Exit(3)


@app.command()
def recommend(
    trace: Annotated[str, typer.Argument(help="The recorded traffic (any trace format run accepts).")],
    sla_ttft_ms: Annotated[float, typer.Option(help="TTFT SLA (ms).")],
    sla_itl_ms: Annotated[float, typer.Option(help="ITL SLA (ms).")],
    extra_engine_args: Annotated[str | None, typer.Option(help=f"Engine args (model, GPU, perf model): {JSON_HELP}.")
                                 ] = None,
    goal: Annotated[float, typer.Option(help="SLA attainment the deployment must reach (0-1].")] = 0.9,
    space: Annotated[Path | None, typer.Option(help="Search space (YAML); default agg 1..8, disagg 1..4 x 1..4.")
                     ] = None,
    gpu_prices: Annotated[Path | None, typer.Option(help="USD per GPU-hour overrides (YAML/JSON).")] = None,
    executor: Annotated[str, typer.Option(help="local (process pool) | ray.")] = "local",
    jobs: Annotated[int | None, typer.Option(help="Replays at once (default: CPU cores).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write recommendation.yaml, dynamo_args.json, "
                                                 "candidates.parquet, pareto.html here (and resume from it).")
                       ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ranked table as JSON.")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No progress bar.")] = False,
) -> None:
    """The cheapest deployment that meets the SLA for this traffic, with cost and energy (replay-backed search)."""
    from llmreplay.cli.recommend_cmd import execute_recommend

    execute_recommend(trace, sla_ttft_ms=sla_ttft_ms, sla_itl_ms=sla_itl_ms, extra_engine_args=extra_engine_args,
                      goal=goal, space_file=space, gpu_prices=gpu_prices, executor=executor, jobs=jobs,
                      out_dir=out_dir, as_json_out=as_json, progress=not no_progress, console=out)


@app.command()
def report(
    run_json: Annotated[Path, typer.Argument(help="A run report JSON (--report-json of llmreplay run).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Write the HTML report here.")],
    plotlyjs: Annotated[str, typer.Option(help="inline: embed plotly.js (works offline) | cdn: load it from "
                                          "cdn.plot.ly (smaller file).")] = "inline",
) -> None:
    """Redraw the interactive HTML report from a saved run report JSON."""
    from llmreplay.cli.report_cmd import execute_report

    execute_report(run_json, output, plotlyjs, out)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the run report (--report-json), with its version."""
    from llmreplay.cli.schema_cmd import execute_schema

    execute_schema(out)


from llmreplay.cli.parity_cmd import parity  # noqa: E402  (open-loop parity with Dynamo's planner)

app.command()(parity)


perf_app = BoundedTyper(no_args_is_help=True, help="Inspect perf models: step-time surface and engine capacity.")
app.add_typer(perf_app, name="perf")


@perf_app.command("show")
def perf_show(
    engine_args: Annotated[str | None, typer.Option("--engine-args", "--extra-engine-args",
                                                    help=f"Engine args: {JSON_HELP}.")] = None,
    isl: Annotated[float, typer.Option(help="Input tokens per request, for the capacity. Range: >= 1, <= "
                                       "10_000_000.", callback=in_range(1, 1e7))] = 3000,
    osl: Annotated[float, typer.Option(help="Output tokens per request, for the capacity. Range: >= 1, <= "
                                       "10_000_000.", callback=in_range(1, 1e7))] = 150,
    itl: Annotated[float, typer.Option(help="ITL SLA (ms). Range: > 0, <= 100_000_000.",
                                       callback=in_range(0, 1e8, lo_open=True))] = 50,
    ttft: Annotated[float, typer.Option(help="TTFT SLA (ms), checked against one prompt's prefill. Range: > 0, "
                                        "<= 100_000_000.", callback=in_range(0, 1e8, lo_open=True))] = 500,
    html: Annotated[Path | None, typer.Option(help="Also draw the surfaces and capacity curve here (HTML).")] = None,
    plotlyjs: Annotated[str, typer.Option(help="inline (works offline) | cdn (smaller file).")] = "inline",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    granularity: Annotated[int, typer.Option(help="Planner bootstrap points per axis. Range: >= 2, <= 64.",
                                             callback=in_range(2, 64))] = 8,
) -> None:
    """Step times of an engine's perf model (prefill and decode) and the engine req/s the planner would compute."""
    from llmreplay.cli.perf_cmd import execute_perf_show

    execute_perf_show(engine_args, isl, osl, itl, ttft, html, plotlyjs, as_json, granularity, out)


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); our InputError becomes exit 2 without a traceback."""
    try:
        app()
    except InputError as exc:
        report_input_error(exc)
        sys.exit(2)
    except OSError as exc:
        if exc.filename is None:
            raise
        report_input_error(InputError(os_error_text(exc)))
        sys.exit(2)


if __name__ == "__main__":
    main()
