"""The AIPerf-style summary table printed after a run: rows and formatting from the metric definitions."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from llmreplay.metrics import definitions as d
from llmreplay.report.model import RunReport

COLUMNS = ("avg", "min", "max", "p99", "p90", "p50", "std")


def summary_table(report: RunReport) -> Table:
    t = Table(title="llmreplay | LLM Metrics", title_justify="left", show_lines=False)
    t.add_column("Metric", style="bold")
    for c in COLUMNS:
        t.add_column(c, justify="right")
    for m in d.RECORD_METRICS:
        stats = report.metrics.stats(m.key)
        t.add_row(f"{m.header} ({m.unit})", *(m.format(stats.at(c)) for c in COLUMNS))
    return t


def totals_table(report: RunReport) -> Table:
    m, sla, cost, req, sim = report.metrics, report.sla, report.cost, report.requests, report.sim
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column("Metric", style="bold")
    t.add_column("value", justify="right")
    rows: list[tuple[str, str]] = [
        ("Request Count (requests)", f"{req.completed:,} completed / {req.total:,} total"),
        (f"{d.REQUEST_THROUGHPUT.header} (requests/sec)", d.REQUEST_THROUGHPUT.format(m.request_throughput_rps)),
        (f"{d.OUTPUT_TOKEN_THROUGHPUT.header} (tokens/sec)",
         d.OUTPUT_TOKEN_THROUGHPUT.format(m.output_token_throughput_tps)),
    ]
    if sla.given:
        short = {"ttft_ms": "TTFT", "itl_ms": "ITL", "e2e_ms": "E2E"}
        rows.append(("SLA", ", ".join(f"{short[k]} ≤ {v:g} ms" for k, v in sla.limits().items())))
        rows.append((d.SLA_ATTAINMENT.header, d.SLA_ATTAINMENT.format(sla.attainment)))
        rows.append((f"{d.GOODPUT.header} (requests/sec)", d.GOODPUT.format(sla.goodput_rps)))
    rows += [
        (d.GPU_HOURS.header, d.GPU_HOURS.format(cost.gpu_hours)),
        (f"{d.ENERGY.header} ({d.ENERGY.unit})", d.ENERGY.format(cost.energy_kwh)),
        (f"{d.ENERGY_PER_TOKEN.header} ({d.ENERGY_PER_TOKEN.unit})",
         d.ENERGY_PER_TOKEN.format(cost.joules_per_output_token)),
        ("Replica Transitions", f"{cost.replica_transitions:,}"),
        (d.PREFIX_HIT_RATE.header, d.PREFIX_HIT_RATE.format(m.prefix_cache_hit_rate)),
    ]
    if req.rejected:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in req.rejected_by_reason.items())
        rows.append(("Rejected Requests", f"{req.rejected:,} ({reasons})"))
    else:
        rows.append(("Rejected Requests", "0"))
    rows.append(("Unfinished Requests", f"{req.unfinished:,}"))
    for name, p in report.pools.items():
        if p.utilization is None:
            rows.append((f"Pool {name}", "idle"))
            continue
        rows.append((f"Pool {name}", f"{d.UTILIZATION.tag} {d.UTILIZATION.format(p.utilization)}, KV peak "
                     f"{d.format_share(p.kv_peak_fraction or 0.0)}, {p.preemptions:,} preemptions"))
    rows.append(("Simulated Time (s)", f"{sim.simulated_s:,.2f}"))
    rows.append(("Simulation Wall Time (s)",
                 f"{sim.wall_s:.2f} ({sim.requests_per_wall_s or 0:,.0f} requests/s, "
                 f"{sim.simulated_s_per_wall_s or 0:,.0f}× real time)"))
    for k, v in rows:
        t.add_row(k, v)
    return t


def print_summary(report: RunReport, console: Console) -> None:
    console.print(summary_table(report))
    console.print(totals_table(report))
