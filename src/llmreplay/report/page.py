"""The report page: the summary header (verdict and cards), the figures and the assets, as one HTML file.

Layout: a summary block (trace, topology, SLA verdict, attainment, GPU-hours, replica transitions, latency), then
one Plotly figure of stacked panels whose time axes are linked, then the latency CDFs. The page is drawn from the
typed run report alone; plotly.js is embedded (``plotlyjs="inline"``, works offline) or loaded from the CDN.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from llmreplay.errors import InputError
from llmreplay.metrics import definitions as d
from llmreplay.report.assets import CSS, SCRIPT
from llmreplay.report.baselines_panel import baselines_section
from llmreplay.report.data import (
    ATTAINMENT_GOAL,
    describe_engines,
    describe_topology,
    format_limit,
    interval_data,
    planner_ticks,
    replica_transitions,
    sla_targets,
    sla_text,
    sla_verdict,
    verdict_split,
)
from llmreplay.report.figures import cdf_figure, time_figure
from llmreplay.report.model import RunReport, parse_report
from llmreplay.report.timeaxis import MAX_TIME_TICKS, TIME_STEPS_S, format_elapsed

e = html.escape


def _card(key: str, big: str, sub: str, cls: str = "") -> str:
    return (f'<div class="card"{f" data-card={json.dumps(cls)}" if cls else ""}><div class="k">{key}</div>'
            f'<div class="big">{big}</div><div class="sub">{sub}</div></div>')


def _latency_card(report: RunReport, label: str, metric: d.MetricDef, sla_key: str) -> str:
    """The percentile the SLA is judged on (attainment goal 90 % ⇔ p90), coloured by the share of requests that
    met this SLA."""
    stat = f"p{round(ATTAINMENT_GOAL * 100)}"
    value = report.metrics.stats(metric.key).at(stat)
    limit = sla_targets(report).get(sla_key)
    share = {"ttft_ms": report.sla.within_ttft, "itl_ms": report.sla.within_itl,
             "e2e_ms": report.sla.within_e2e}[sla_key]
    cls = "" if share is None else (" ok" if share >= ATTAINMENT_GOAL else " bad")
    big = f'<span class="v{cls}">{e(metric.format(value, with_unit=True))}</span>'
    if limit is None:
        sub = f"avg {e(metric.format(report.metrics.stats(metric.key).avg, with_unit=True))} · no SLA"
    elif share is None:
        sub = f"SLA {e(format_limit(limit))}"
    else:
        sub = f"SLA {e(format_limit(limit))} · {e(d.format_share(share))} of requests within"
    return _card(f"{label} {stat}", big, sub)


def summary_html(report: RunReport) -> str:
    cfg, req, cost, metrics, sla = report.config, report.requests, report.cost, report.metrics, report.sla
    trace_name = Path(str(cfg.trace or "trace")).name
    v = sla_verdict(report)
    main, planner = describe_topology(report)
    tr = replica_transitions(report)
    trans_sub = "no planner" if not planner_ticks(report) and not tr.total else (
        f"{tr.up} up, {tr.down} down · {tr.reversals} reversal{'s' if tr.reversals != 1 else ''} (flapping)")
    if tr.by_component and len(tr.by_component) > 1:
        trans_sub += " · " + ", ".join(f"{k} {n}" for k, n in sorted(tr.by_component.items()))
    lost = req.rejected + req.unfinished
    att_cls = "ok" if v.status == "met" else "bad" if v.status == "missed" else ""
    cards = [
        _card("SLA attainment", f'<span class="v {att_cls}">{e(d.SLA_ATTAINMENT.format(sla.attainment))}</span>',
              f"goodput {e(d.GOODPUT.format(sla.goodput_rps, with_unit=True))}"),
        _latency_card(report, "TTFT", d.TTFT, "ttft_ms"),
        _latency_card(report, "ITL", d.ITL, "itl_ms"),
        _latency_card(report, "Request latency", d.REQUEST_LATENCY, "e2e_ms"),
        _card("GPU-hours", e(d.GPU_HOURS.format(cost.gpu_hours)), f"peak {cost.peak_gpus:,} GPUs"
              + (f" · {e(d.ENERGY.format(cost.energy_kwh, with_unit=True))}" if cost.energy_kwh is not None else "")),
        _card("Replica transitions", f"{tr.total:,}", e(trans_sub)),
        _card("Requests", f"{req.completed:,} done",
              f'<span class="v {"bad" if lost else ""}">{req.rejected:,} rejected · {req.unfinished:,} '
              "unfinished</span>"),
        _card("Throughput", e(d.REQUEST_THROUGHPUT.format(metrics.request_throughput_rps, with_unit=True)),
              f"{e(d.OUTPUT_TOKEN_THROUGHPUT.format(metrics.output_token_throughput_tps))} output tokens/s"),
        _card("Prefix-cache hit rate", e(d.PREFIX_HIT_RATE.format(metrics.prefix_cache_hit_rate)),
              "of prompt tokens"),
    ]
    sla_txt = sla_text(report)
    requests = cfg.trace_requests if cfg.trace_requests is not None else req.total
    meta = [
        f"<b>Trace</b> {e(trace_name)} · {requests:,} requests · {format_elapsed(metrics.duration_s)} of traffic"
        f" (simulated {format_elapsed(report.sim.simulated_s)})",
        f"<b>Topology</b> {e(main)} · {e(planner)}",
        f"<b>Engine</b> {e(describe_engines(report))}",
        f"<b>SLA</b> {e(sla_txt) if sla_txt else 'none given'}",
    ]
    badge = {"met": "SLA MET", "missed": "SLA MISSED", "none": "NO SLA"}[v.status]
    return (
        "<header>\n"
        f"<h1>llmreplay run report — {e(trace_name)}</h1>\n"
        + "".join(f'<div class="meta">{m}</div>\n' for m in meta)
        + f'<div class="verdict {v.status}" id="llmreplay-verdict"><span class="badge">{badge}</span>'
        f'<div><div class="head">{e(v.headline)}</div><div class="detail">{e(v.detail)}</div>'
        + _split_html(report) + _misses_html(report) + "</div></div>\n"
        f'<div class="cards">{"".join(cards)}</div>\n'
        "</header>\n"
    )


def _split_html(report: RunReport) -> str:
    """Attainment decomposed: within each SLA, within both, missed both."""
    parts = verdict_split(report)
    if not parts:
        return ""
    items = "".join(f'<span class="split" data-key="{p.key}" data-share="{p.share:.6f}">{e(p.label)} '
                    f"<b>{e(d.format_share(p.share))}</b></span>" for p in parts)
    return f'<div class="splits" id="llmreplay-split">{items}</div>'


def _misses_html(report: RunReport) -> str:
    """The top reasons requests missed the SLA, each with the windows where they happened (a click zooms the
    charts to a window)."""
    misses = report.sla.miss_reasons or []
    if not misses:
        return ""
    rows = []
    for m in misses[:4]:
        windows = ", ".join(
            f'<a href="#timeline" class="window" data-start="{w.start_s:g}" data-end="{w.end_s:g}">'
            f"{format_elapsed(w.start_s)}–{format_elapsed(w.end_s)}</a> ({w.requests:,})" for w in m.windows)
        rows.append(f'<li data-reason="{e(m.reason)}"><b>{e(m.reason)}</b>: {m.requests:,} requests '
                    f"({e(d.format_share(m.share))}){' · busiest ' + windows if windows else ''}</li>")
    return ('<div class="misses" id="llmreplay-misses">Why requests missed the SLA (one reason each, first that '
            f"applies):<ul>{''.join(rows)}</ul></div>")


def _plot_div(div_id: str, fig: dict[str, Any]) -> str:
    config = {"responsive": True, "displaylogo": False, "scrollZoom": False,
              "modeBarButtonsToRemove": ["select2d", "lasso2d"],
              "toImageButtonOptions": {"format": "png", "scale": 2}}
    payload = json.dumps(fig["data"], separators=(",", ":"), allow_nan=False)
    lay = json.dumps(fig["layout"], separators=(",", ":"), allow_nan=False)
    conf = json.dumps(config, separators=(",", ":"))
    js = f"Plotly.newPlot({json.dumps(div_id)},{payload},{lay},{conf});"
    return (f'<div id="{div_id}" class="plot"></div>\n<script>{_safe_script(js)}</script>')


def _safe_script(js: str) -> str:
    return js.replace("</", "<\\/")


def _plotly_script(plotlyjs: str) -> str:
    import plotly.offline as po

    if plotlyjs == "inline":
        return f'<script type="text/javascript">{po.get_plotlyjs()}</script>'
    if plotlyjs == "cdn":
        return (f'<script src="https://cdn.plot.ly/plotly-{po.get_plotlyjs_version()}.min.js" '
                'charset="utf-8"></script>')
    raise InputError(f"--plotlyjs must be 'inline' (works offline) or 'cdn' (smaller file), not {plotlyjs!r}.")


def render_html(report: RunReport | dict[str, Any], plotlyjs: str = "inline") -> str:
    """The whole report page. ``plotlyjs``: ``"inline"`` embeds plotly.js (works offline, ~5 MB more) or
    ``"cdn"`` loads it from cdn.plot.ly (small file, needs network to view)."""
    model = as_report(report)
    lib = _plotly_script(plotlyjs)
    tfig = time_figure(model)
    cfig = cdf_figure(model)
    body = [summary_html(model)]
    if tfig is not None:
        end = float(tfig["layout"]["xaxis"]["range"][1])
        axes = [k for k in tfig["layout"] if k.startswith("xaxis")]
        bins = interval_data(model)
        body.append(
            '<div class="toolbar"><button id="llmreplay-reset" type="button">Reset time range</button>'
            f'<span class="range" id="llmreplay-range">showing {format_elapsed(0)} – {format_elapsed(end)}</span>'
            + _interval_select(model, bins)
            + '<span class="highlight" id="llmreplay-highlight"></span>'
            "<span>Drag on any chart to zoom: every time chart follows. Double-click to zoom out. "
            "Click a decision to highlight its interval; a legend entry to hide it.</span></div>\n")
        body.append('<section id="timeline">\n' + _plot_div("llmreplay-timeline", tfig) + "\n</section>\n")
        script = SCRIPT % {"div": json.dumps("llmreplay-timeline"), "steps": json.dumps(list(TIME_STEPS_S)),
                           "max_ticks": MAX_TIME_TICKS, "axes": json.dumps(axes), "end": json.dumps(end),
                           "bins": json.dumps(bins, separators=(",", ":"), allow_nan=False)}
        body.append(f"<script>{_safe_script(script)}</script>\n")
    else:
        body.append('<section><p class="hint">This report has no time series to draw.</p></section>\n')
    if cfig is not None:
        hint = "Share of measured requests at or below each latency"
        hint += "; the dashed line is the SLA." if any(v is not None for v in sla_targets(model).values()) else "."
        body.append('<section id="cdfs"><h2>Latency distributions (completed requests)</h2>'
                    f'<p class="hint">{hint}</p>\n' + _plot_div("llmreplay-cdfs", cfig) + "\n</section>\n")
    if model.baselines is not None:
        body.append(baselines_section(model.baselines.model_dump(mode="json")))
    body.append("<script>window.llmreplayRendered = true;</script>\n")
    body.append(f"<footer>llmreplay {e(model.sim.version or '')} · schema {e(model.schema_id)} · "
                "times are elapsed simulated time (m:ss)</footer>\n")
    title = f"llmreplay report — {Path(str(model.config.trace or 'run')).name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{e(title)}</title>\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<style>{CSS}</style>\n{lib}\n</head>\n<body>\n" + "".join(body) + "</body>\n</html>\n")


def _interval_select(report: RunReport, bins: dict[str, Any] | None) -> str:
    quantum = report.timeseries.arrival_quantum_s
    why = (f"the trace's arrivals step by {quantum:g} s: intervals are multiples of it" if quantum
           else "arrivals are continuous")
    if bins is None:
        return f'<span title="{e(why)}">interval {report.timeseries.bin_s:g} s</span>'
    options = "".join(f'<option value="{k}"{" selected" if k == 1 else ""}>{bins["bin_s"] * k:g} s</option>'
                      for k in bins["choices"])
    return (f'<label title="{e(why)}">interval <select id="llmreplay-interval">{options}</select></label>')


def as_report(report: RunReport | dict[str, Any]) -> RunReport:
    """The typed report (a dict is validated first, e.g. one built in a test or read from an older file)."""
    return report if isinstance(report, RunReport) else parse_report(report, "run report")


def write_html_report(report: RunReport | dict[str, Any], path: str | Path, plotlyjs: str = "inline") -> Path:
    """Render and write the report; returns the path written (parent directories are created)."""
    p = Path(path)
    text = render_html(report, plotlyjs)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
