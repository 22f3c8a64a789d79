"""The report's Plotly figures, assembled as plain dicts from :mod:`llmreplay.report.data`: the stacked time
panels with linked x-axes (``matches='x'``: zooming one zooms all) and the latency CDFs.

Plain dicts (no ``plotly.graph_objects``) keep rendering fast; the page only needs plotly.js.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmreplay.metrics.definitions import SLA_ATTAINMENT
from llmreplay.report.data import (
    ATTAINMENT_GOAL,
    F64,
    MANY_ENGINES,
    Line,
    _finite,
    _round_list,
    attainment_data,
    capacity_data,
    cdf_data,
    decision_data,
    engine_load_data,
    gpu_data,
    horizon_s,
    latency_data,
    planner_config,
    planner_ticks,
    pool_names,
    prefix_hit_data,
    reason_colour,
    replica_data,
    sla_targets,
    topology,
    traffic_data,
    utilization_heatmap,
)
from llmreplay.report.model import RunReport
from llmreplay.report.style import (
    BAD_COLOUR,
    GOOD_COLOUR,
    LOAD_REASON_COLOURS,
    NEUTRAL_COLOUR,
    OBSERVED_COLOUR,
    POOL_COLOURS,
    REASON_SYMBOL,
    SLA_COLOUR,
    THROUGHPUT_REASON_COLOURS,
)
from llmreplay.report.timeaxis import format_elapsed, log_ticks, time_ticks


# ---------------------------------------------------------------------------------------------- figure assembly
@dataclass
class Panel:
    key: str
    title: str
    traces: list[dict[str, Any]]
    yaxis: dict[str, Any]
    height: int = 180
    note: str | None = None  # small grey text right of the title


def _trace(line: Line, legend: bool = True) -> dict[str, Any]:
    nd = 4
    tr: dict[str, Any] = {
        "type": "scatter", "mode": line.mode, "name": line.name, "x": _round_list(line.x, 3),
        "y": _round_list(line.y, nd),
        "line": {"color": line.colour, "width": line.width, "dash": line.dash, "shape": line.shape},
        "connectgaps": line.connect_gaps, "showlegend": line.legend and legend,
    }
    if "markers" in line.mode:
        tr["marker"] = {"size": 5 if line.connect_gaps else 3, "color": line.colour}
    if line.fill:
        tr["fill"] = line.fill
        tr["fillcolor"] = _rgba(line.colour, 0.12)
    if line.opacity < 1:
        tr["opacity"] = line.opacity
    if line.group:
        tr["legendgroup"] = line.group
    tr["hovertemplate"] = line.hover or f"{html.escape(line.name)}: %{{y:,.4~g}}<extra></extra>"
    if line.series:
        tr["meta"] = {"series": line.series}
    return tr


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _lines_panel(key: str, title: str, lines: list[Line], yaxis: dict[str, Any], height: int = 180,
                 note: str | None = None) -> Panel | None:
    if not lines:
        return None
    return Panel(key, title, [_trace(ln) for ln in lines], yaxis, height, note)


@dataclass
class Clip:
    top: float  # the y-axis top
    x: F64  # where values lie above it
    y: F64  # those values


def clip_outliers(lines: Sequence[Line], floor: float | None = None, quantile: float = 0.98) -> Clip | None:
    """A y-axis top that keeps a few extreme values (e.g. the last, nearly empty interval of a run) from
    flattening the whole chart: 1.15 × the ``quantile`` of all values (at least 1.25 × ``floor``, the SLA), when
    something lies more than twice as high; the values above are returned to be marked at the top edge."""
    vals = np.concatenate([ln.y[np.isfinite(ln.y)] for ln in lines]) if lines else np.zeros(0)
    if vals.size < 20:
        return None
    top = float(np.quantile(vals, quantile)) * 1.15
    if floor is not None:
        top = max(top, floor * 1.25)
    if top <= 0 or vals.max() <= top * 2:
        return None
    xs: list[float] = []
    ys: list[float] = []
    for ln in lines:
        idx = np.flatnonzero(np.isfinite(ln.y) & (ln.y > top)).tolist()
        i = 0
        while i < len(idx):
            j = idx[i]
            if i + 1 < len(idx) and idx[i + 1] == j + 1 and ln.y[j + 1] == ln.y[j]:
                xs.append(float(ln.x[j] + ln.x[j + 1]) / 2)  # one interval drawn as a flat segment: its middle
                i += 2
            else:
                xs.append(float(ln.x[j]))
                i += 1
            ys.append(float(ln.y[j]))
    order = np.argsort(xs)
    return Clip(top, np.asarray(xs)[order], np.asarray(ys)[order])


def _latency_panel(report: RunReport, metric: str) -> Panel | None:
    lines = latency_data(report, metric)
    if not lines:
        return None
    has_sla = sla_targets(report)[f"{metric}_ms"] is not None
    has_estimate = any(ln.name == "planner estimate" for ln in lines)
    title = (f"{metric.upper()}: observed" + (" vs SLA" if has_sla else " (avg of the requests completing in each "
                                                "interval)") + (" and planner estimate" if has_estimate else ""))
    yaxis: dict[str, Any] = {"title": {"text": "ms"}, "rangemode": "tozero"}
    data = [ln for ln in lines if not ln.name.startswith("SLA ")]
    clip = clip_outliers(data, sla_targets(report)[f"{metric}_ms"])
    traces = [_trace(ln) for ln in lines]
    note = None
    if clip is not None:
        yaxis.update({"range": [0, clip.top], "autorange": False})
        traces.append({"type": "scatter", "mode": "markers", "name": "above the chart", "x": _round_list(clip.x, 3),
                       "y": [round(clip.top * 0.97, 3)] * int(clip.x.size), "customdata": _round_list(clip.y, 1),
                       "marker": {"symbol": "triangle-up", "size": 9, "color": BAD_COLOUR}, "cliponaxis": False,
                       "hovertemplate": "%{customdata:,.0f} ms (above the chart)<extra></extra>"})
        note = f"y-axis cut at {clip.top:,.0f} ms: ▲ marks higher values (max {clip.y.max():,.0f} ms)"
    return Panel(metric, title, traces, yaxis, 180, note)


def _attainment_panel(report: RunReport) -> Panel | None:
    a = attainment_data(report)
    if a is None:
        return None
    ok = np.isfinite(a.y)
    colours = [GOOD_COLOUR if m else BAD_COLOUR for m in a.met[ok]]
    traces: list[dict[str, Any]] = [{
        "type": "bar", "name": "per interval (by arrival)", "x": _round_list(a.x[ok], 3),
        "y": _round_list(a.y[ok], 4), "width": a.width, "marker": {"color": colours, "line": {"width": 0}},
        "hovertemplate": "%{y:.1%} of the interval's requests met the SLA<extra></extra>", "showlegend": False,
        "meta": {"series": "sla_attainment"},
    }, _trace(Line(f"goal {a.goal:.0%}", np.array([0.0, horizon_s(report)]), np.array([a.goal, a.goal]),
                   SLA_COLOUR, dash="dash", width=1.4))]
    if a.overall is not None:
        traces.append(_trace(Line(f"whole run {SLA_ATTAINMENT.format(a.overall)}", np.array([0.0, horizon_s(report)]),
                                  np.array([a.overall, a.overall]), GOOD_COLOUR if a.overall >= a.goal else BAD_COLOUR,
                                  dash="dot", width=1.6)))
    # legend swatches for the bar colours
    for name, colour in ((f"interval ≥ {a.goal:.0%}", GOOD_COLOUR), (f"interval < {a.goal:.0%}", BAD_COLOUR)):
        traces.append({"type": "bar", "name": name, "x": [None], "y": [None], "marker": {"color": colour},
                       "showlegend": True, "hoverinfo": "skip"})
    note = f"{a.intervals_met} of {a.intervals} intervals met the {a.goal:.0%} goal"
    return Panel("attainment", "SLA attainment per interval (share of requests meeting every SLA)", traces,
                 {"title": {"text": "met SLA"}, "tickformat": ".0%", "range": [0, 1.05]}, 160, note)


def _engine_panel(report: RunReport, pool: str, key: str, title: str) -> Panel | None:
    data = engine_load_data(report, pool, key)
    if data is None:
        return None
    colour = POOL_COLOURS.get(pool, NEUTRAL_COLOUR)
    n = len(data.engines)
    opacity = 0.85 if n <= 4 else 0.6 if n <= MANY_ENGINES else 0.35
    traces: list[dict[str, Any]] = []
    # distinct colours that are neither the prefill blue nor the decode red
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
               "#17becf", "#393b79")
    for i, e in enumerate(data.engines):
        c = palette[i % len(palette)] if n <= MANY_ENGINES else colour
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"worker {e.worker}", "x": _round_list(e.x, 3),
            "y": _round_list(e.y, 0), "line": {"color": c, "width": 1.1}, "opacity": opacity,
            # per-engine traces stay out of the legend (one entry toggles them all)
            "showlegend": i == 0, "legendgroup": f"engines-{pool}-{key}",
            "hovertemplate": f"worker {e.worker}: %{{y:,.0f}} tokens<extra></extra>",
        })
    if traces:
        traces[0]["name"] = f"each {'worker' if pool == 'agg' else pool + ' engine'} ({n})"
    for extra in (data.cluster_max, data.cluster_median):
        if extra is not None:
            traces.append(_trace(extra))
    if data.capacity is not None:
        traces.append(_trace(Line(f"KV capacity {data.capacity:,.0f}", np.array([0.0, horizon_s(report)]),
                                  np.array([data.capacity, data.capacity]), SLA_COLOUR, dash="dash", width=1.4,
                                  hover=f"KV capacity {data.capacity:,.0f} tokens<extra></extra>")))
    return Panel(f"{key}-{pool}", title, traces, {"title": {"text": "tokens"}, "rangemode": "tozero"}, 200)


def _heatmap_panel(report: RunReport, pool: str) -> Panel | None:
    hm = utilization_heatmap(report, pool)
    if hm is None:
        return None
    z = [_round_list(row, 3) for row in hm.z]
    ids = [_round_list(row, 0) for row in hm.worker]
    trace = {
        "type": "heatmap", "x": _round_list(hm.x, 3), "y": list(range(hm.lanes)), "z": z, "customdata": ids,
        "zmin": 0, "zmax": 1, "colorscale": "YlOrRd", "reversescale": True, "xgap": 0,
        "ygap": 1 if hm.lanes <= 40 else 0,
        "hovertemplate": "worker %{customdata}<br>busy %{z:.0%}<extra></extra>", "showscale": True,
        "colorbar": {"title": {"text": "busy"}, "tickformat": ".0%", "thickness": 12},
        "name": f"utilization {pool}",
    }
    height = int(min(320, max(90, 14 * hm.lanes + 40)))
    who = "worker" if pool == "agg" else f"{pool} worker"
    title = f"Utilization per {who} (share of each interval the engine was stepping)"
    note = "rows reuse a slot once its worker has gone" if hm.lanes < sum(
        1 for _ in report.timeseries.pools[pool].workers) else None
    yaxis: dict[str, Any] = {"title": {"text": "slot" if note else "worker"}, "showgrid": False, "zeroline": False,
                             "range": [-0.5, hm.lanes - 0.5], "autorange": False}
    if note is None and hm.lanes <= 12:
        # one worker per row: label the rows with the worker ids
        labels = [next((f"{v:.0f}" for v in row if math.isfinite(v)), "") for row in hm.worker]
        yaxis.update({"tickmode": "array", "tickvals": list(range(hm.lanes)), "ticktext": labels})
    else:
        yaxis.update({"tickmode": "auto", "nticks": min(hm.lanes, 8)})
    return Panel(f"heatmap-{pool}", title, [trace], yaxis, height, note)


def _decision_panel(report: RunReport, kind: str) -> Panel | None:
    tracks = decision_data(report, kind)
    if not tracks:
        return None
    known = {r for tr in tracks for r in tr.points}
    table = LOAD_REASON_COLOURS if kind == "load" else THROUGHPUT_REASON_COLOURS
    order = [r for r in table if r in known] + sorted(known - set(table))
    traces: list[dict[str, Any]] = []
    pc = planner_config(report)
    interval = pc.get("load_adjustment_interval" if kind == "load" else "throughput_adjustment_interval")
    interval = float(interval) if _finite(interval) else None
    for reason in order:
        first = True
        for tr in tracks:
            if reason not in tr.points:
                continue
            x, y = tr.points[reason]
            size = 6 if reason == "no_change" else 9
            traces.append({
                "type": "scatter", "mode": "markers", "name": reason, "x": _round_list(x, 3),
                "y": _round_list(y, 3), "legendgroup": f"{kind}-{reason}", "showlegend": first,
                "marker": {"color": reason_colour(kind, reason, known), "size": size,
                           "symbol": REASON_SYMBOL.get(reason, "circle"),
                           "line": {"width": 1.2, "color": reason_colour(kind, reason, known)}},
                "text": tr.hovers.get(reason, []), "hovertemplate": "%{text}<extra></extra>", "cliponaxis": False,
                "meta": {"decision": kind, "interval_s": interval},
            })
            first = False
    ys = [tr.y for tr in tracks]
    lo, hi = min(ys) - 0.5, max(ys) + 0.5
    if topology(report) == "disagg":
        lo, hi = 0.5, 2.5
        ticks = ([1.0, 2.0], ["decode", "prefill"])
    else:
        ticks = ([1.0], ["agg"])
    title = ("Load scaling decisions (reactive, every load interval)" if kind == "load"
             else "Throughput scaling decisions (predictive floor, every throughput interval)")
    return Panel(f"decisions-{kind}", title, traces,
                 {"tickmode": "array", "tickvals": ticks[0], "ticktext": ticks[1], "range": [lo, hi],
                  "autorange": False, "showgrid": False, "zeroline": False, "fixedrange": True},
                 60 + 40 * len(ticks[0]))


def _gpu_panels(report: RunReport) -> list[Panel]:
    g = gpu_data(report)
    if g is None:
        return []
    traces = []
    stacked = len(g.per_pool) > 1
    for name, y in g.per_pool.items():
        label = "GPUs" if name == "agg" else f"{name} GPUs"
        tr = _trace(Line(label, g.x, y, POOL_COLOURS.get(name, NEUTRAL_COLOUR), shape="hv", width=1.5,
                         hover=f"{label}: %{{y:.0f}}<extra></extra>"))
        if stacked:
            tr["stackgroup"] = "gpus"
        else:
            tr["fill"] = "tozeroy"
            tr["fillcolor"] = _rgba(POOL_COLOURS.get(name, NEUTRAL_COLOUR), 0.12)
        traces.append(tr)
    peak = report.cost.peak_gpus
    gpus = Panel("gpus", "GPUs in use (provisioned workers × GPUs per worker)", traces,
                 {"title": {"text": "GPUs"}, "rangemode": "tozero"}, 130,
                 f"peak {int(peak)}" if _finite(peak) else None)
    note = f"run total {g.total_gpu_hours:,.3f} GPU-h" if g.total_gpu_hours is not None else None
    cum = Panel("gpu-hours", "Cumulative GPU-hours", [_trace(Line(
        "GPU-hours", g.x, g.cumulative_gpu_hours, "#636363", width=1.8,
        hover="%{y:,.3f} GPU-h<extra></extra>"))], {"title": {"text": "GPU-h"}, "rangemode": "tozero"}, 130, note)
    return [gpus, cum]


def build_panels(report: RunReport) -> list[Panel]:
    """The time panels that apply to this run, top to bottom."""
    disagg = topology(report) == "disagg"
    predicted = any(t.get(f"predicted_{k}") is not None for t in planner_ticks(report) for k in ("rps", "isl", "osl"))
    vs_pred = ": observed vs predicted" if predicted else " (observed)"
    replicas = replica_data(report)
    panels: list[Panel | None] = [
        _attainment_panel(report),
        _latency_panel(report, "ttft"),
        _latency_panel(report, "itl"),
        _lines_panel("replicas", "Replicas" + (" per component" if disagg else "")
                     + (" with throughput floors" if any("floor" in ln.name for ln in replicas) else ""),
                     replicas, {"title": {"text": "replicas"}, "rangemode": "tozero"}, 170),
        _decision_panel(report, "load"),
        _decision_panel(report, "throughput"),
        _lines_panel("rps", "Request rate" + vs_pred, traffic_data(report, "rps"),
                     {"title": {"text": "req/s"}, "rangemode": "tozero"}, 160),
        _lines_panel("isl", "Input sequence length (avg per interval)" + vs_pred,
                     traffic_data(report, "isl"), {"title": {"text": "tokens"}, "rangemode": "tozero"}, 130),
        _lines_panel("osl", "Output sequence length (avg per interval)" + vs_pred,
                     traffic_data(report, "osl"), {"title": {"text": "tokens"}, "rangemode": "tozero"}, 130),
        _lines_panel("capacity", "Engine capacity: requests/s one engine sustains within the SLA (planner)",
                     capacity_data(report), {"title": {"text": "req/s"}, "rangemode": "tozero"}, 140),
    ]
    if disagg:
        panels.append(_engine_panel(report, "prefill", "queued_prefill_tokens_max",
                                    "Prefill queue per prefill engine (queued prompt tokens, max per interval)"))
        panels.append(_engine_panel(report, "decode", "total_kv_tokens_max",
                                    "Decode load per decode engine: total KV = queued + in-flight tokens "
                                    "(max per interval)"))
    else:
        for pool in pool_names(report):
            panels.append(_engine_panel(report, pool, "total_kv_tokens_max",
                                        "Load per worker: total KV = queued + in-flight tokens (max per interval)"))
    for pool in pool_names(report):
        panels.append(_heatmap_panel(report, pool))
    panels.extend(_gpu_panels(report))
    panels.append(_lines_panel("prefix", "Prefix-cache hit rate (cached prompt tokens / prompt tokens)",
                               prefix_hit_data(report), {"title": {"text": "hit rate"}, "tickformat": ".0%",
                                                         "rangemode": "tozero"}, 130))
    return [p for p in panels if p is not None]


TITLE_PX = 30
TICKS_PX = 34
MARGIN = {"l": 70, "r": 230, "t": 10, "b": 10}
AXIS_STYLE = {"gridcolor": "#ececec", "zeroline": False, "linecolor": "#bbbbbb", "showline": True,
              "ticks": "outside", "tickcolor": "#bbbbbb", "automargin": False}


def time_figure(report: RunReport) -> dict[str, Any] | None:
    """The stacked time panels as one Plotly figure (dict) with every x-axis matched to the first."""
    panels = build_panels(report)
    if not panels:
        return None
    plot_h = sum(TITLE_PX + p.height + TICKS_PX for p in panels)
    height = plot_h + MARGIN["t"] + MARGIN["b"]
    end = horizon_s(report)
    tickvals, ticktext = time_ticks(0.0, end)
    layout: dict[str, Any] = {
        "height": height, "margin": MARGIN, "plot_bgcolor": "#ffffff", "paper_bgcolor": "#ffffff",
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
        "hovermode": "closest", "bargap": 0, "annotations": [], "dragmode": "zoom", "barmode": "overlay",
    }
    data: list[dict[str, Any]] = []
    cursor = 0
    for k, p in enumerate(panels, start=1):
        top = cursor + TITLE_PX
        bottom = top + p.height
        cursor = bottom + TICKS_PX
        dom = [round(1 - bottom / plot_h, 6), round(1 - top / plot_h, 6)]
        xname = "xaxis" if k == 1 else f"xaxis{k}"
        yname = "yaxis" if k == 1 else f"yaxis{k}"
        xref = "x" if k == 1 else f"x{k}"
        yref = "y" if k == 1 else f"y{k}"
        xa: dict[str, Any] = {**AXIS_STYLE, "anchor": yref, "domain": [0, 1], "tickmode": "array",
                              "tickvals": tickvals, "ticktext": ticktext, "showspikes": True,
                              "spikemode": "across", "spikethickness": 1, "spikecolor": "#999999",
                              "spikedash": "dot", "hoverformat": ".1f"}
        if k == 1:
            xa["range"] = [0, end]
            xa["autorange"] = False
        else:
            xa["matches"] = "x"
        layout[xname] = xa
        layout[yname] = {**AXIS_STYLE, "anchor": xref, "domain": dom, **p.yaxis}
        legend = "legend" if k == 1 else f"legend{k}"
        layout[legend] = {"x": 1.01, "xanchor": "left", "y": dom[1], "yanchor": "top", "font": {"size": 11},
                          "bgcolor": "rgba(255,255,255,0)", "tracegroupgap": 2, "itemclick": "toggle",
                          "groupclick": "togglegroup"}
        layout["annotations"].append({
            "text": f"<b>{html.escape(p.title)}</b>", "xref": "paper", "yref": "paper", "x": 0, "y": dom[1],
            "xanchor": "left", "yanchor": "bottom", "yshift": 4, "showarrow": False, "font": {"size": 13},
            "name": f"title:{p.key}",
        })
        if p.note:
            layout["annotations"].append({
                "text": html.escape(p.note), "xref": "paper", "yref": "paper", "x": 1, "y": dom[1],
                "xanchor": "right", "yanchor": "bottom", "yshift": 4, "showarrow": False,
                "font": {"size": 11, "color": "#666666"}, "name": f"note:{p.key}",
            })
        for tr in p.traces:
            tr["xaxis"] = xref
            tr["yaxis"] = yref
            _time_in_hover(tr)
            if tr.get("type") == "heatmap":
                tr["colorbar"] = {**tr.get("colorbar", {}), "x": 1.01, "xanchor": "left", "y": dom[1],
                                  "yanchor": "top", "len": (dom[1] - dom[0]), "lenmode": "fraction"}
            else:
                tr["legend"] = legend
            data.append(tr)
    return {"data": data, "layout": layout}


def _time_in_hover(tr: dict[str, Any]) -> None:
    """Every hover starts with its time in the page's one format (``m:ss``), as the axes: the label rides in the
    trace's ``text`` (decision markers already carry it in theirs)."""
    if tr.get("type") == "scatter" and tr.get("x"):
        # a quantised trace's first interval starts half a step before 0: the run starts at 0
        tr["x"] = [x if not _finite(x) or x >= 0 else 0.0 for x in tr["x"]]
    if "hovertemplate" not in tr or "text" in tr or tr.get("hoverinfo") == "skip":
        return
    xs = tr.get("x") or []
    labels = ["" if not _finite(x) else format_elapsed(max(0.0, float(x))) for x in xs]
    if tr.get("type") == "heatmap":
        tr["text"] = [labels] * len(tr.get("z") or [])
    else:
        tr["text"] = labels
        if tr.get("type") == "bar":
            tr["textposition"] = "none"  # the label is for the hover only
    tr["hovertemplate"] = "%{text} · " + tr["hovertemplate"]


def cdf_figure(report: RunReport) -> dict[str, Any] | None:
    """Latency CDFs side by side (log x), each with its SLA line and the share of requests within it."""
    cdfs = cdf_data(report)
    if not cdfs:
        return None
    n = len(cdfs)
    gap = 0.06
    w = (1 - gap * (n - 1)) / n
    layout: dict[str, Any] = {
        "height": 340, "margin": {"l": 70, "r": 230, "t": 36, "b": 50}, "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff", "showlegend": False, "hovermode": "closest", "annotations": [], "shapes": [],
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 12},
    }
    data: list[dict[str, Any]] = []
    for k, c in enumerate(cdfs, start=1):
        x0 = k - 1
        dom = [round(x0 * (w + gap), 6), round(x0 * (w + gap) + w, 6)]
        xname, yname = ("xaxis", "yaxis") if k == 1 else (f"xaxis{k}", f"yaxis{k}")
        xref, yref = ("x", "y") if k == 1 else (f"x{k}", f"y{k}")
        positive = c.values[c.values > 0]
        lo = float(positive.min()) if positive.size else 1.0
        hi = float(max(c.values.max(), c.sla or 0.0))
        tv, tt = log_ticks(lo, hi)
        layout[xname] = {**AXIS_STYLE, "type": "log", "anchor": yref, "domain": dom,
                         "title": {"text": "ms (log scale)"}, "range": [math.log10(lo) - 0.05, math.log10(hi) + 0.1],
                         "tickmode": "array", "tickvals": tv, "ticktext": tt}
        layout[yname] = {**AXIS_STYLE, "anchor": xref, "range": [0, 1.02], "tickformat": ".0%",
                         "title": {"text": "requests ≤ x" if k == 1 else ""}}
        data.append({"type": "scatter", "mode": "lines", "x": _round_list(c.values, 3),
                     "y": _round_list(c.percent / 100.0, 4), "xaxis": xref, "yaxis": yref, "name": c.title,
                     "line": {"color": OBSERVED_COLOUR if c.metric != "request_latency_ms" else "#3182bd",
                              "width": 2.2},
                     "hovertemplate": "%{y:.0%} of requests ≤ %{x:,.1f} ms<extra></extra>"})
        title = f"<b>{c.title} CDF</b>"
        layout["annotations"].append({"text": title, "xref": "paper", "yref": "paper", "x": dom[0], "y": 1,
                                      "xanchor": "left", "yanchor": "bottom", "yshift": 6, "showarrow": False,
                                      "font": {"size": 13}, "name": f"title:cdf-{c.metric}"})
        if c.sla is not None:
            ok = c.within_sla is not None and c.within_sla >= ATTAINMENT_GOAL
            colour = GOOD_COLOUR if ok else BAD_COLOUR
            layout["shapes"].append({"type": "line", "xref": xref, "yref": f"{yref} domain", "x0": c.sla,
                                     "x1": c.sla, "y0": 0, "y1": 1,
                                     "line": {"color": SLA_COLOUR, "dash": "dash", "width": 1.4}})
            within = "" if c.within_sla is None else f"<br>{c.within_sla:.1%} within"
            layout["annotations"].append({"text": f"SLA {c.sla:,.0f} ms{within}", "xref": xref,
                                          "yref": f"{yref} domain", "x": math.log10(c.sla), "y": 0.05,
                                          "xanchor": "left", "yanchor": "bottom", "xshift": 4, "align": "left",
                                          "showarrow": False, "font": {"size": 11, "color": colour},
                                          "bgcolor": "rgba(255,255,255,0.8)"})
    return {"data": data, "layout": layout}

