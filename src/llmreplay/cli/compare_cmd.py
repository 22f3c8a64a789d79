"""``llmreplay compare``: run reports side by side, saying first where the runs differ.

Two tables: the settings that differ between the runs (SLA, precision, perf model, planner policy, topology, ...:
every config field whose value is not the same in all reports), then the metrics, formatted by their definitions.
A metric judged under different conditions is marked "not comparable" (†): attainment, goodput and the within-SLA
shares when the SLAs differ; latency statistics when the warm-up differs (they cover other requests).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmreplay.errors import InputError
from llmreplay.metrics import definitions as d
from llmreplay.report.model import RunReport, load_report

__all__ = ["execute_compare", "load_report"]

#: config fields left out: output files (they differ between any two runs and say nothing about the result) and
#: the --sla-* flags (the ``sla.*`` rows show the SLA the run was judged on, which may be the planner's targets)
SKIPPED_FIELDS = ("report_json", "report_html", "requests_out", "sla_ttft_ms", "sla_itl_ms", "sla_e2e_ms")
#: settings shown first when they differ, in this order (the rest follow alphabetically)
FIRST = ("sla.ttft_ms", "sla.itl_ms", "sla.e2e_ms", "topology", "planner.policy", "perf_model", "hardware",
         "extra_engine_args.kv_cache_dtype", "prefill_engine_args.kv_cache_dtype",
         "decode_engine_args.kv_cache_dtype", "trace", "warmup_s")


def settings(report: RunReport) -> dict[str, str]:
    """Every setting of a run as ``dotted.key → text``: the SLA it was judged on, the planner policy and the
    flattened resolved config (output paths left out)."""
    out: dict[str, str] = {f"sla.{k}": _text(getattr(report.sla, k)) for k in ("ttft_ms", "itl_ms", "e2e_ms")}
    out["planner.policy"] = (report.planner.policy or "default") if report.planner is not None else "no planner"
    config = report.config.model_dump(mode="json")
    for k in SKIPPED_FIELDS:
        config.pop(k, None)
    _flatten(config, "", out)
    return out


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = _text(value)


def _text(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def differing_settings(reports: list[RunReport]) -> list[tuple[str, list[str]]]:
    """The settings whose value is not the same in every report (missing counts as "—"), important ones first."""
    per = [settings(r) for r in reports]
    keys = sorted({k for s in per for k in s}, key=lambda k: (_rank(k), k))
    rows = []
    for k in keys:
        values = [s.get(k, "—") for s in per]
        if len(set(values)) > 1:
            rows.append((k, values))
    return rows


def _rank(key: str) -> int:
    for i, first in enumerate(FIRST):
        if key == first or key.startswith(first + "."):
            return i
    return len(FIRST)


@dataclass(frozen=True)
class Row:
    label: str
    metric: d.MetricDef
    value: Callable[[RunReport], float | int | None]
    depends_on: str = ""  # "sla" or "warmup": not comparable when that differs


def _stat(key: str, stat: str) -> Callable[[RunReport], float | None]:
    return lambda r: r.metrics.stats(key).at(stat)


COUNT = d.MetricDef("count", "count", "Count", "", 0, (), d.Warmup.INCLUDED, "A count.")
ROWS: tuple[Row, ...] = (
    Row("requests completed", COUNT, lambda r: r.requests.completed),
    Row("requests rejected", COUNT, lambda r: r.requests.rejected),
    Row("requests unfinished", COUNT, lambda r: r.requests.unfinished),
    *(Row(f"{name} {stat} ({m.unit})", m, _stat(m.key, stat), "warmup")
      for m, name in ((d.TTFT, "TTFT"), (d.ITL, "ITL"), (d.REQUEST_LATENCY, "latency"))
      for stat in ("avg", "p50", "p90", "p99")),
    Row("request throughput (req/s)", d.REQUEST_THROUGHPUT, lambda r: r.metrics.request_throughput_rps),
    Row("output tokens/s", d.OUTPUT_TOKEN_THROUGHPUT, lambda r: r.metrics.output_token_throughput_tps),
    Row("prefix cache hit rate", d.PREFIX_HIT_RATE, lambda r: r.metrics.prefix_cache_hit_rate),
    Row("SLA attainment", d.SLA_ATTAINMENT, lambda r: r.sla.attainment, "sla"),
    Row("within TTFT SLA", d.SLA_ATTAINMENT, lambda r: r.sla.within_ttft, "sla"),
    Row("within ITL SLA", d.SLA_ATTAINMENT, lambda r: r.sla.within_itl, "sla"),
    Row("goodput (req/s)", d.GOODPUT, lambda r: r.sla.goodput_rps, "sla"),
    Row("GPU-hours", d.GPU_HOURS, lambda r: r.cost.gpu_hours),
    Row("energy (kWh)", d.ENERGY, lambda r: r.cost.energy_kwh),
    Row("energy per output token (J)", d.ENERGY_PER_TOKEN, lambda r: r.cost.joules_per_output_token),
    Row("peak GPUs", COUNT, lambda r: r.cost.peak_gpus),
    Row("replica transitions", COUNT, lambda r: r.cost.replica_transitions),
    Row("reversals (flapping)", COUNT, lambda r: r.cost.reversals),
)
POOL_ROWS: tuple[tuple[str, d.MetricDef, str], ...] = (
    ("GPU-hours", d.GPU_HOURS, "gpu_hours"), ("utilization", d.UTILIZATION, "utilization"),
    ("KV peak", d.UTILIZATION, "kv_peak_fraction"), ("preemptions", COUNT, "preemptions"))


def execute_compare(paths: list[Path], console: Console) -> None:
    if len(paths) < 2:
        raise InputError("compare: give at least two run report JSON files.")
    reports = [load_report(p) for p in paths]
    names = [escape(n) for n in _column_names(paths)]  # file names are user text, not console markup
    diff = differing_settings(reports)
    s = Table(title="llmreplay | compare: settings that differ", title_justify="left")
    s.add_column("setting", style="bold")
    for n in names:
        s.add_column(n, justify="right")
    for key, values in diff:
        s.add_row(key, *(escape(str(v)) for v in values))
    if diff:
        console.print(s)
    else:
        console.print("settings: the runs' settings are identical (apart from output paths).")
    changed = {key.split(".")[0] for key, _ in diff}
    not_comparable = {"sla"} if "sla" in changed else set()
    if "warmup_s" in changed:
        not_comparable.add("warmup")
    t = Table(title="llmreplay | compare: metrics", title_justify="left")
    t.add_column("metric", style="bold")
    for n in names:
        t.add_column(n, justify="right")
    for row in ROWS:
        mark = " †" if row.depends_on in not_comparable else ""
        t.add_row(row.label + mark, *(row.metric.format(row.value(r)) for r in reports))
    for pool in sorted({name for r in reports for name in r.pools}):
        for label, metric, key in POOL_ROWS:
            t.add_row(f"{pool} pool: {label}", *(metric.format(getattr(r.pools[pool], key)) if pool in r.pools
                                                 else "—" for r in reports))
    console.print(t)
    notes = {"sla": "† not comparable: the runs were judged on different SLAs (see the settings above).",
             "warmup": "† not comparable: different --warmup-s, so the latency statistics cover other requests."}
    for k in sorted(not_comparable):
        console.print(notes[k], highlight=False)


def _column_names(paths: list[Path]) -> list[str]:
    """File stems, or the parent folder too when two stems are the same (e.g. sweep points' report.json)."""
    stems = [p.stem for p in paths]
    if len(set(stems)) == len(stems):
        return stems
    return [f"{p.parent.name}/{p.stem}" if stems.count(p.stem) > 1 else p.stem for p in paths]
