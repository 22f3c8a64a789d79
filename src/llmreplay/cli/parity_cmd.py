"""``llmreplay parity``: replay the ticks of a Dynamo planner replay report through the Dynamo policy.

Open-loop: each tick's recorded inputs (worker FPMs, traffic, worker counts) go to our twin of Dynamo 1.6.1's
planner, bootstrapped as Dynamo bootstrapped it; its decisions and diagnostics are compared with Dynamo's.
The report holds only a digest of the planner config, so the config and engine args are given (Dynamo's flag
names).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from llmreplay.errors import InputError

JSON_HELP = "inline JSON, or a path to a .json/.yaml file"


def parity(
    report: Annotated[Path, typer.Argument(help="Dynamo replay report (.json or .json.gz) with planner ticks.")],
    planner_config: Annotated[str, typer.Option(help=f"The planner config of that run: {JSON_HELP}.")],
    extra_engine_args: Annotated[str | None, typer.Option(help=f"Agg engine args: {JSON_HELP}.")] = None,
    prefill_engine_args: Annotated[str | None, typer.Option(help=f"Disagg prefill engine args: {JSON_HELP}.")
                                   ] = None,
    decode_engine_args: Annotated[str | None, typer.Option(help=f"Disagg decode engine args: {JSON_HELP}.")] = None,
    benchmark_granularity: Annotated[int, typer.Option(help="Bootstrap points per axis (Dynamo's default 8).")
                                     ] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Feed a Dynamo planner replay's recorded ticks to the Dynamo policy; compare decisions and diagnostics."""
    console = Console()
    try:
        result = execute_parity(report, planner_config, extra_engine_args, prefill_engine_args,
                                decode_engine_args, benchmark_granularity)
    except InputError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(result, indent=1))
        return
    render(result, console)


def execute_parity(report_path: Path, planner_config: str, extra: str | None, prefill: str | None,
                   decode: str | None, granularity: int) -> dict[str, Any]:
    from llmreplay.config import load_json_option
    from llmreplay.planner.config import parse_planner_config
    from llmreplay.planner.dynamo.parity import build_policy, dynamo_engine_args, load_report, run_parity

    report = load_report(report_path)
    raw_cfg = load_json_option(planner_config, "--planner-config") or {}
    cfg, warnings = parse_planner_config(raw_cfg)
    if cfg.policy != "dynamo":
        raise InputError("--planner-config: parity checks policy 'dynamo'; remove \"policy\" or set it to "
                         "\"dynamo\".")
    if extra is not None and (prefill is not None or decode is not None):
        raise InputError("give --extra-engine-args (agg) or --prefill-engine-args with --decode-engine-args "
                         "(disagg), not both.")
    if extra is not None:
        mode = "agg"
        decode_args = dynamo_engine_args(load_json_option(extra, "--extra-engine-args") or {},
                                         "--extra-engine-args")
        prefill_args = None
    elif prefill is not None and decode is not None:
        mode = "disagg"
        prefill_args = dynamo_engine_args(load_json_option(prefill, "--prefill-engine-args") or {},
                                          "--prefill-engine-args")
        decode_args = dynamo_engine_args(load_json_option(decode, "--decode-engine-args") or {},
                                         "--decode-engine-args")
    else:
        raise InputError("engine args missing: give --extra-engine-args (agg) or both --prefill-engine-args and "
                         "--decode-engine-args (disagg), as the Dynamo run had them.")
    recorded_mode = (report["planner"].get("metadata") or {}).get("mode")
    if cfg.mode is not None and cfg.mode != mode:
        raise InputError(f"planner_config.mode is '{cfg.mode}' but the engine args given are for {mode}.")
    if recorded_mode is not None and recorded_mode != mode:
        raise InputError(f"{report_path}: the report is a {recorded_mode} run; the engine args given are for {mode}.")
    built = build_policy(cfg, mode, prefill_args, decode_args, granularity)
    result = run_parity(report, built).to_dict()
    result["mode"] = mode
    result["warnings"] = warnings
    return result


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.2f} %"


def render(r: dict[str, Any], console: Console) -> None:
    boot = r["bootstrap"]
    head = Table(title=f"Dynamo policy vs Dynamo's recorded ticks ({r['mode']})", show_header=False)
    head.add_row("ticks compared", f"{r['ticks']:,}")
    head.add_row("same decision (all ticks)", _pct(r["decision_agreement"]))
    head.add_row(f"same decision ({r['change_ticks']:,} ticks where Dynamo scaled)", _pct(r["change_agreement"]))
    head.add_row("same reasons", _pct(r["reason_agreement"]))
    head.add_row("bootstrap FPMs, prefill / decode (ours)",
                 f"{boot['ours']['prefill_fpm_count']} / {boot['ours']['decode_fpm_count']}")
    head.add_row("bootstrap FPMs, prefill / decode (Dynamo)",
                 f"{boot['dynamo']['prefill_fpm_count']} / {boot['dynamo']['decode_fpm_count']}")
    head.add_row("bootstrap FPMs identical to Dynamo's (sha256 of points and times)",
                 "yes" if boot.get("identical") else "no")
    console.print(head)
    diag = Table(title="Diagnostics: largest relative difference over all ticks")
    diag.add_column("diagnostic", no_wrap=True)  # Dynamo's names in full: a user looks them up in its report
    diag.add_column("max rel. difference", justify="right")
    diag.add_column("null on one side", justify="right")
    for name, err in r["diagnostics_max_rel_error"].items():
        diag.add_row(name, _pct(err), str(r["diagnostics_null_mismatches"][name]))
    console.print(diag)
    for w in r.get("warnings", []):
        console.print(f"[yellow]note:[/] {w}", highlight=False)
