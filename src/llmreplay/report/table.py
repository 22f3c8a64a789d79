"""The AIPerf-style summary table printed after a run (rows from the metric definitions)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from llmreplay.metrics.summary import RECORD_METRICS

COLUMNS = ("avg", "min", "max", "p99", "p90", "p50", "std")


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "N/A"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def summary_table(report: dict[str, Any]) -> Table:
    m = report["metrics"]
    t = Table(title="llmreplay | LLM Metrics", title_justify="left", show_lines=False)
    t.add_column("Metric", style="bold")
    for c in COLUMNS:
        t.add_column(c, justify="right")
    for d in RECORD_METRICS:
        stats = m[d.key]
        t.add_row(d.header, *(_fmt(stats[c]) for c in COLUMNS))
    return t


def totals_table(report: dict[str, Any]) -> Table:
    m, sla, cost, req, sim = report["metrics"], report["sla"], report["cost"], report["requests"], report["sim"]
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column("Metric", style="bold")
    t.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("Request Count (requests)", f"{req['completed']:,} completed / {req['total']:,} total"),
        ("Request Throughput (requests/sec)", _fmt(m["request_throughput_rps"])),
        ("Output Token Throughput (tokens/sec)", _fmt(m["output_token_throughput_tps"])),
    ]
    if any(sla[k] is not None for k in ("ttft_ms", "itl_ms", "e2e_ms")):
        given = ", ".join(f"{k.split('_')[0].upper()} ≤ {sla[k]:g} ms" for k in ("ttft_ms", "itl_ms", "e2e_ms")
                          if sla[k] is not None)
        att = sla["attainment"]
        rows.append(("SLA", given))
        rows.append(("SLA Attainment", "N/A" if att is None else f"{att * 100:.2f} %"))
        rows.append(("Goodput (requests/sec)", _fmt(sla["goodput_rps"])))
    rows += [
        ("GPU-hours", _fmt(cost["gpu_hours"], 3)),
        ("Energy (kWh)", _fmt(cost.get("energy_kwh"), 3)),
        ("Energy per Output Token (J)", _fmt(cost.get("joules_per_output_token"), 2)),
        ("Replica Transitions", _fmt(cost["replica_transitions"])),
        ("Prefix Cache Hit Rate (tokens)", "N/A" if m["prefix_cache_hit_rate"] is None
         else f"{m['prefix_cache_hit_rate'] * 100:.2f} %"),
    ]
    rejected = req["rejected"]
    if rejected:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in req["rejected_by_reason"].items())
        rows.append(("Rejected Requests", f"{rejected:,} ({reasons})"))
    else:
        rows.append(("Rejected Requests", "0"))
    rows.append(("Unfinished Requests", f"{req['unfinished']:,}"))
    for name, p in report["pools"].items():
        if p["utilization"] is None:
            rows.append((f"Pool {name}", "idle"))
            continue
        util, kv = p["utilization"] * 100, p["kv_peak_fraction"] * 100
        rows.append((f"Pool {name}", f"util {util:.1f} %, KV peak {kv:.1f} %, {p['preemptions']:,} preemptions"))
    rows.append(("Simulated Time (s)", _fmt(sim["simulated_s"])))
    rows.append(("Simulation Wall Time (s)",
                 f"{sim['wall_s']:.2f} ({sim['requests_per_wall_s']:,.0f} requests/s, "
                 f"{sim['simulated_s_per_wall_s']:,.0f}× real time)"))
    for k, v in rows:
        t.add_row(k, v)
    return t


def print_summary(report: dict[str, Any], console: Console) -> None:
    console.print(summary_table(report))
    console.print(totals_table(report))
