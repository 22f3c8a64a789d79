"""``llmreplay compare``: run reports side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from llmreplay.errors import InputError

ROWS: list[tuple[str, tuple[str, ...], str]] = [
    ("requests completed", ("requests", "completed"), "int"),
    ("requests rejected", ("requests", "rejected"), "int"),
    ("requests unfinished", ("requests", "unfinished"), "int"),
    ("TTFT avg (ms)", ("metrics", "ttft_ms", "avg"), "f1"),
    ("TTFT p90 (ms)", ("metrics", "ttft_ms", "p90"), "f1"),
    ("TTFT p99 (ms)", ("metrics", "ttft_ms", "p99"), "f1"),
    ("ITL avg (ms)", ("metrics", "itl_ms", "avg"), "f2"),
    ("ITL p90 (ms)", ("metrics", "itl_ms", "p90"), "f2"),
    ("ITL p99 (ms)", ("metrics", "itl_ms", "p99"), "f2"),
    ("latency avg (ms)", ("metrics", "request_latency_ms", "avg"), "f1"),
    ("latency p90 (ms)", ("metrics", "request_latency_ms", "p90"), "f1"),
    ("request throughput (req/s)", ("metrics", "request_throughput_rps"), "f3"),
    ("output tokens/s", ("metrics", "output_token_throughput_tps"), "f1"),
    ("prefix cache hit rate", ("metrics", "prefix_cache_hit_rate"), "pct"),
    ("SLA attainment", ("sla", "attainment"), "pct"),
    ("goodput (req/s)", ("sla", "goodput_rps"), "f3"),
    ("GPU-hours", ("cost", "gpu_hours"), "f3"),
    ("energy (kWh)", ("cost", "energy_kwh"), "f3"),
    ("energy per output token (J)", ("cost", "joules_per_output_token"), "f3"),
    ("peak GPUs", ("cost", "peak_gpus"), "int"),
    ("replica transitions", ("cost", "replica_transitions"), "int"),
]


def _get(d: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "—"
    if kind == "int":
        return f"{int(v):,}"
    if kind == "pct":
        return f"{v * 100:.1f} %"
    return f"{v:,.{kind[1]}f}"


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file.") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("llmreplay.run/"):
        raise InputError(f"{path}: not an llmreplay run report (expected \"schema\": \"llmreplay.run/1\").")
    return data


def execute_compare(paths: list[Path], console: Console) -> None:
    if len(paths) < 2:
        raise InputError("compare: give at least two run report JSON files.")
    reports = [load_report(p) for p in paths]
    t = Table(title="llmreplay | compare", title_justify="left")
    t.add_column("metric", style="bold")
    for p in paths:
        t.add_column(p.stem, justify="right")
    for label, path, kind in ROWS:
        t.add_row(label, *(_fmt(_get(r, path), kind) for r in reports))
    pool_names = sorted({name for r in reports for name in (r.get("pools") or {})})
    for name in pool_names:
        for label, key, kind in (("GPU-hours", "gpu_hours", "f3"), ("utilization", "utilization", "pct"),
                                 ("KV peak", "kv_peak_fraction", "pct"), ("preemptions", "preemptions", "int")):
            t.add_row(f"{name} pool: {label}", *(_fmt(_get(r, ("pools", name, key)), kind) for r in reports))
    console.print(t)
