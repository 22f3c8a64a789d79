"""Where a run writes, decided and checked before it simulates anything, and written atomically after.

Why before: an unwritable report path used to fail after the whole simulation had run, and a report path
equal to the trace overwrote the trace. :func:`plan_outputs` resolves every output path, refuses one that
is an input or that two outputs share, keeps a planner's ``report_filename`` inside ``./planner_reports/``
(Dynamo's folder; a name that would leave it is an error, overriding SPEC §6.3) and proves each folder
writable. :func:`write_planned` then writes each file through a temporary file and a rename, so a failed
write never leaves a truncated file where a good one was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmreplay.errors import InputError
from llmreplay.fileio import atomic_path, atomic_write, check_writable

if TYPE_CHECKING:
    from llmreplay.config import RunConfig
    from llmreplay.runner import RunOutput

PLANNER_REPORTS = Path("planner_reports")
DEFAULT_JSON_NAME = "llmreplay_report.json"
RECORD_SUFFIXES = (".parquet", ".jsonl", ".json")


@dataclass(frozen=True)
class OutputPlan:
    report_json: Path | None = None
    report_html: Path | None = None
    requests_out: Path | None = None


def planner_report_path(name: str) -> Path:
    """``report_filename`` under ./planner_reports/; a name that would leave that folder is an error."""
    p = Path(name)
    target = (PLANNER_REPORTS / p).resolve()
    if p.is_absolute() or not target.is_relative_to(PLANNER_REPORTS.resolve()) or target == PLANNER_REPORTS.resolve():
        raise InputError(
            f"planner_config.report_filename '{name}' must name a file inside ./{PLANNER_REPORTS}/ (e.g. "
            "'report.html' or 'runs/a.html'), not an absolute path or one with '..'; use --report-html to write "
            "the HTML report anywhere else."
        )
    return PLANNER_REPORTS / p


def input_paths(cfg: RunConfig, extra: tuple[str | Path, ...] = ()) -> list[Path]:
    """Files the run reads, which no output may overwrite."""
    paths = [Path(p) for p in extra]
    if cfg.trace:
        paths.append(Path(cfg.trace))
    return paths


def plan_outputs(cfg: RunConfig, inputs: tuple[str | Path, ...] = ()) -> OutputPlan:
    """Resolve and check every output of ``cfg`` (see module doc); ``inputs`` adds files read besides the
    trace (the ``--config`` file, JSON option files)."""
    json_path = html_path = records_path = None
    if cfg.report_json:
        json_path = Path(cfg.report_json)
        if json_path.is_dir():
            json_path = json_path / DEFAULT_JSON_NAME
    if cfg.report_html:
        html_path = Path(cfg.report_html)
    else:
        name = (cfg.planner_config or {}).get("report_filename")
        if isinstance(name, str) and name:
            html_path = planner_report_path(name)
    if cfg.requests_out:
        records_path = Path(cfg.requests_out)
        if records_path.suffix.lower() not in RECORD_SUFFIXES:
            raise InputError(f"--requests-out {records_path}: the extension must be .parquet or .jsonl "
                             "(the format follows it).")
    named = [(flag, p) for flag, p in (("--report-json", json_path), ("--report-html", html_path),
                                       ("--requests-out", records_path)) if p is not None]
    read = {_key(p): p for p in input_paths(cfg, inputs) if p.exists()}
    seen: dict[Path, str] = {}
    for flag, p in named:
        key = _key(p)
        if key in read:
            raise InputError(f"{flag} {p} is an input of this run ({read[key]}); writing it would destroy the "
                             "input. Choose another output path.")
        if key in seen:
            raise InputError(f"{seen[key]} and {flag} both write {p}; one would replace the other. Give each "
                             "output its own path.")
        seen[key] = flag
        check_writable(p, flag)
    return OutputPlan(json_path, html_path, records_path)


def _key(p: Path) -> Path:
    return p.resolve()


def write_planned(plan: OutputPlan, out: RunOutput, dump: Any) -> list[str]:
    """Write the planned files atomically; return one line per file written. ``dump`` renders the report JSON."""
    lines: list[str] = []
    if plan.report_json is not None:
        atomic_write(plan.report_json, dump(out.report), "--report-json")
        lines.append(f"report JSON: {plan.report_json}")
    if plan.report_html is not None:
        from llmreplay.report.html import render_html

        atomic_write(plan.report_html, render_html(out.report), "--report-html")
        lines.append(f"HTML report: {plan.report_html}")
    if plan.requests_out is not None:
        with atomic_path(plan.requests_out, "--requests-out") as tmp:
            out.records.write(tmp)
        lines.append(f"per-request records: {plan.requests_out}")
    return lines
