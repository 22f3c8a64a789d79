"""The interactive HTML report: one self-contained file drawn from the run report JSON alone.

Layout: a summary block (trace, topology, SLA verdict, attainment, GPU-hours, replica transitions, latency), then
one Plotly figure of stacked panels whose time axes are linked (``matches='x'``: zooming or panning one zooms
all), then the latency CDFs. Time axes are plain seconds labelled ``m:ss`` / ``h:mm:ss`` (never dates); a small
script relabels the ticks after each zoom.

Every chart's data comes from a pure helper below (``replica_data``, ``engine_load_data``, ...) that takes the
report dict and returns numpy arrays, so the numbers behind the pictures are unit-tested without a browser.
The figure is assembled as plain dicts (no ``plotly.graph_objects``): rendering stays fast and the page only
needs plotly.js, embedded (``plotlyjs="inline"``, works offline) or loaded from the CDN (``"cdn"``).
"""

from __future__ import annotations

import html
import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from llmreplay.errors import InputError
from llmreplay.report.baselines_panel import baselines_section

F64 = npt.NDArray[np.float64]

#: share of requests that must meet every SLA for the run (or an interval) to count as "SLA met": the p90
#: convention (attainment ≥ 90 % ⇔ the 90th percentile request is within the SLA)
ATTAINMENT_GOAL = 0.90
#: per-engine series longer than this are downsampled to per-bucket min/max envelopes
MAX_SERIES_POINTS = 1000
#: planner tick series longer than this are downsampled the same way
MAX_TICK_POINTS = 4000
#: more engines than this in a pool: the per-engine load lines get a cluster max/median overlay
MANY_ENGINES = 16

PREFILL_COLOUR = "#1f3b8c"  # dark blue
DECODE_COLOUR = "#d62728"  # red
AGG_COLOUR = "#d62728"  # the agg worker count is reported as replicas_decode: drawn as decode
POOL_COLOURS = {"agg": AGG_COLOUR, "prefill": PREFILL_COLOUR, "decode": DECODE_COLOUR}
OBSERVED_COLOUR = "#17becf"
PREDICTED_COLOUR = "#e6550d"
ESTIMATE_COLOUR = "#9467bd"
SLA_COLOUR = "#444444"
GOOD_COLOUR = "#2ca02c"
BAD_COLOUR = "#d62728"
NEUTRAL_COLOUR = "#555555"

#: fixed colour per planner reason (load and throughput decisions), so two reports read the same
LOAD_REASON_COLOURS = {
    "scale_up": "#2ca02c",
    "scale_down": "#ff7f0e",
    "scale_down_capped_by_throughput": "#8c564b",
    "no_change": "#b8b8b8",
    "no_fpm_data": "#7f7f7f",
    "insufficient_data": "#bcbd22",
    "worker_count_mismatch": "#9467bd",
    "scaling_in_progress": "#17becf",
    "capped_by_gpu_budget": "#8b0000",
    "disabled": "#dddddd",
}
THROUGHPUT_REASON_COLOURS = {
    "set_lower_bound": "#1f77b4",
    "scale": "#2ca02c",
    "no_traffic_data": "#7f7f7f",
    "partner_not_ready": "#e377c2",  # pink, as SPEC §6.3 asks
    "model_not_ready": "#bcbd22",
    "disabled": "#dddddd",
}
#: reasons not known at the time of writing get these, in sorted order of their names
FALLBACK_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354", "#756bb1")
#: where a reason's marker sits on its track (up above, down below) and its symbol
REASON_OFFSET = {"scale_up": 0.22, "scale_down": -0.22, "scale_down_capped_by_throughput": -0.22}
REASON_SYMBOL = {"scale_up": "triangle-up", "scale": "star", "scale_down": "triangle-down",
                 "scale_down_capped_by_throughput": "triangle-down-open", "no_change": "line-ns-open",
                 "set_lower_bound": "diamond", "partner_not_ready": "x", "capped_by_gpu_budget": "square"}

#: tick steps (s) of the elapsed-time axis, the same list as the page's script uses after a zoom
TIME_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
                1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000, 864000)
MAX_TIME_TICKS = 10


# ---------------------------------------------------------------------------------------------- small helpers
def _get(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _f64(values: Iterable[Any] | None) -> F64:
    """A float array with NaN for None / missing values."""
    if values is None:
        return np.zeros(0)
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def format_elapsed(seconds: float, step: float = 1.0) -> str:
    """Elapsed time as ``m:ss`` (``h:mm:ss`` from one hour), with decimals when ticks are under a second."""
    neg = seconds < 0
    s = abs(seconds)
    decimals = 0
    if step < 1:
        decimals = min(3, max(1, math.ceil(-math.log10(step) - 1e-9)))
    total = round(s, decimals)
    h = int(total // 3600)
    m = int((total - h * 3600) // 60)
    sec = total - h * 3600 - m * 60
    sec_txt = f"{sec:0{3 + decimals}.{decimals}f}" if decimals else f"{round(sec):02d}"
    out = f"{h}:{m:02d}:{sec_txt}" if h else f"{m}:{sec_txt}"
    return "-" + out if neg else out


def time_ticks(t0: float, t1: float, max_ticks: int = MAX_TIME_TICKS) -> tuple[list[float], list[str]]:
    """Round tick positions over [t0, t1] and their elapsed-time labels."""
    span = max(t1 - t0, 1e-9)
    step = next((s for s in TIME_STEPS_S if span / s <= max_ticks), float(TIME_STEPS_S[-1]))
    first = math.ceil(t0 / step - 1e-9)
    vals: list[float] = []
    k = first
    while k * step <= t1 + 1e-9 and len(vals) < 10 * max_ticks:
        vals.append(round(k * step, 6))
        k += 1
    return vals, [format_elapsed(v, step) for v in vals]


def step_segments(t: F64, y: F64, width: float) -> tuple[F64, F64]:
    """Per-interval values as flat segments [t, t + width) joined where bins are adjacent and broken (NaN) after
    a bin with no value, drawn with a plain line. Unlike ``line_shape='hv'``, a lone bin between two empty ones
    still shows. Each finite value appears twice in a row in the output."""
    ok = np.isfinite(y)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return np.zeros(0), np.zeros(0)
    brk = np.ones(idx.size, dtype=bool)  # break after this bin?
    brk[:-1] = idx[1:] != idx[:-1] + 1
    brk[-1] = False
    n = 2 * idx.size + int(brk.sum())
    xs = np.empty(n)
    ys = np.empty(n)
    pos = np.arange(idx.size) * 2 + np.concatenate([[0], np.cumsum(brk[:-1])])
    xs[pos] = t[idx]
    xs[pos + 1] = t[idx] + width
    ys[pos] = y[idx]
    ys[pos + 1] = y[idx]
    gaps = pos[brk] + 2
    xs[gaps] = t[idx[brk]] + width
    ys[gaps] = np.nan
    return xs, ys


def envelope_downsample(x: F64, y: F64, max_points: int) -> tuple[F64, F64]:
    """At most ``max_points`` points: each bucket of consecutive samples keeps its minimum and its maximum (in
    time order), so spikes survive; gaps (NaN) survive as NaN in all-NaN buckets."""
    n = x.size
    if n <= max_points or max_points < 4:
        return x, y
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    xs: list[float] = []
    ys: list[float] = []
    for a, b in itertools.pairwise(edges):
        if b <= a:
            continue
        seg = y[a:b]
        ok = np.isfinite(seg)
        if not ok.any():
            xs.append(float(x[a]))
            ys.append(math.nan)
            continue
        i_min = a + int(np.nanargmin(seg))
        i_max = a + int(np.nanargmax(seg))
        for i in sorted({i_min, i_max}):
            xs.append(float(x[i]))
            ys.append(float(y[i]))
    return np.asarray(xs), np.asarray(ys)


def _round_list(a: F64, nd: int) -> list[float | None]:
    r = np.round(a.astype(np.float64), nd)
    return [None if not math.isfinite(v) else (int(v) if nd <= 0 else v) for v in r.tolist()]


# ---------------------------------------------------------------------------------------------- run facts
def topology(report: dict[str, Any]) -> str:
    """``"agg"`` or ``"disagg"``, from the pools (the planner config's ``mode`` may be null)."""
    pools = report.get("pools") or _get(report, "timeseries", "pools") or {}
    if "prefill" in pools or "decode" in pools:
        return "disagg"
    mode = _get(report, "config", "planner_config", "mode")
    return "disagg" if mode == "disagg" else "agg"


def pool_names(report: dict[str, Any]) -> list[str]:
    pools = _get(report, "timeseries", "pools") or report.get("pools") or {}
    order = ["agg", "prefill", "decode"]
    return [p for p in order if p in pools] + sorted(p for p in pools if p not in order)


def planner_ticks(report: dict[str, Any]) -> list[dict[str, Any]]:
    ticks = _get(report, "planner", "ticks")
    return list(ticks) if isinstance(ticks, list) else []


def sla_targets(report: dict[str, Any]) -> dict[str, float | None]:
    """SLA lines: the run's SLA (``--sla-*``), else the planner's targets (``ttft``/``itl`` in its config)."""
    sla = report.get("sla") or {}
    pc = _get(report, "config", "planner_config") or _get(report, "planner", "config") or {}
    ttft = sla.get("ttft_ms") if _finite(sla.get("ttft_ms")) else pc.get("ttft")
    itl = sla.get("itl_ms") if _finite(sla.get("itl_ms")) else pc.get("itl")
    return {"ttft_ms": float(ttft) if _finite(ttft) else None, "itl_ms": float(itl) if _finite(itl) else None,
            "e2e_ms": float(sla["e2e_ms"]) if _finite(sla.get("e2e_ms")) else None}


def horizon_s(report: dict[str, Any]) -> float:
    ts = report.get("timeseries") or {}
    t = ts.get("t_s") or []
    end = (float(t[-1]) + float(ts.get("bin_s") or 0)) if t else 0.0
    sim = _get(report, "sim", "simulated_s")
    ticks = planner_ticks(report)
    last_tick = float(ticks[-1]["t_s"]) if ticks and _finite(ticks[-1].get("t_s")) else 0.0
    return max(end if end > 0 else (float(sim) if _finite(sim) else 0.0), last_tick, 1e-3)


@dataclass
class Transitions:
    total: int
    up: int
    down: int
    reversals: int | None
    by_component: dict[str, int] = field(default_factory=dict)


def replica_transitions(report: dict[str, Any]) -> Transitions:
    """Actual changes of a replica count (not decision ticks): from ``planner.events`` where ``from != to``,
    else from changes between consecutive ticks, else ``cost.replica_transitions``."""
    events = _get(report, "planner", "events")
    reversals = _get(report, "cost", "reversals")
    rev = int(reversals) if _finite(reversals) else None
    if isinstance(events, list) and (events or planner_ticks(report)):
        by: dict[str, int] = {}
        up = down = 0
        for e in events:
            a, b = e.get("from"), e.get("to")
            if not (_finite(a) and _finite(b)) or a == b:
                continue
            by[str(e.get("component"))] = by.get(str(e.get("component")), 0) + 1
            up += b > a
            down += b < a
        return Transitions(up + down, up, down, rev, by)
    ticks = planner_ticks(report)
    if ticks:
        by = {}
        up = down = 0
        for comp in ("prefill", "decode"):
            prev: float | None = None
            for t in ticks:
                v = t.get(f"replicas_{comp}")
                if not _finite(v):
                    continue
                if prev is not None and v != prev:
                    by[comp] = by.get(comp, 0) + 1
                    up += v > prev
                    down += v < prev
                prev = float(v)
        return Transitions(up + down, up, down, rev, by)
    n = _get(report, "cost", "replica_transitions")
    return Transitions(int(n) if _finite(n) else 0, 0, 0, rev, {})


# ---------------------------------------------------------------------------------------------- chart data
@dataclass
class Line:
    """One drawable series."""

    name: str
    x: F64
    y: F64
    colour: str = NEUTRAL_COLOUR
    dash: str = "solid"
    shape: str = "linear"
    width: float = 2.0
    connect_gaps: bool = False
    legend: bool = True
    group: str | None = None
    mode: str = "lines"
    fill: str | None = None
    opacity: float = 1.0
    hover: str | None = None  # hovertemplate


def _bins(report: dict[str, Any]) -> tuple[F64, float]:
    ts = report.get("timeseries") or {}
    t = _f64(ts.get("t_s"))
    width = float(ts.get("bin_s") or (t[1] - t[0] if t.size > 1 else 1.0))
    return t, width


def _ts_step(report: dict[str, Any], key: str) -> tuple[F64, F64, str]:
    """A per-interval series of ``timeseries`` as flat segments, and the plot mode that suits its sparsity."""
    t, w = _bins(report)
    y = _f64(_get(report, "timeseries", key))
    if y.size != t.size:
        return np.zeros(0), np.zeros(0), "lines"
    return (*step_segments(t, y, w), _sparse_mode(y))


def _sparse_mode(y: F64) -> str:
    """``lines+markers`` when many of the per-interval values stand alone (empty bins on both sides), so a
    sparse series reads as points, not as scattered dashes."""
    ok = np.isfinite(y)
    if not ok.any():
        return "lines"
    left = np.concatenate([[False], ok[:-1]])
    right = np.concatenate([ok[1:], [False]])
    alone = ok & ~left & ~right
    return "lines+markers" if alone.sum() > 0.25 * ok.sum() else "lines"


def _tick_series(ticks: Sequence[dict[str, Any]], key: str, drop_null: bool = False) -> tuple[F64, F64]:
    x = _f64(t.get("t_s") for t in ticks)
    y = _f64(t.get(key) for t in ticks)
    if drop_null:
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
    return x, y


def _has(y: F64) -> bool:
    return bool(y.size and np.isfinite(y).any())


def replica_data(report: dict[str, Any]) -> list[Line]:
    """Replica counts per component from the planner's ticks (steps), with the throughput floors dashed.
    agg: the worker count is ``replicas_decode``. Empty without a planner."""
    ticks = planner_ticks(report)
    if not ticks:
        return []
    agg = topology(report) == "agg"
    end = horizon_s(report)
    lines: list[Line] = []
    for comp in (("decode",) if agg else ("prefill", "decode")):
        colour = AGG_COLOUR if agg else POOL_COLOURS[comp]
        label = "workers" if agg else f"{comp} replicas"
        x, y = _tick_series(ticks, f"replicas_{comp}", drop_null=True)
        if _has(y):
            x, y = np.append(x, end), np.append(y, y[-1])
            lines.append(Line(label, x, y, colour, shape="hv", width=1.6, fill="tozeroy" if agg else None,
                              hover=f"{label}: %{{y:.0f}}<extra></extra>"))
        fx, fy = _tick_series(ticks, f"floor_{comp}", drop_null=True)
        if _has(fy):
            flabel = "throughput floor" if agg else f"{comp} floor"
            lines.append(Line(flabel, fx, fy, colour, dash="dash", shape="hv", width=1.6, connect_gaps=True,
                              hover=f"{flabel}: %{{y:.0f}}<extra></extra>"))
    return lines


def traffic_data(report: dict[str, Any], what: str) -> list[Line]:
    """Observed (per interval, from ``timeseries``) vs the planner's predicted traffic (gaps connected).
    ``what``: ``rps``, ``isl`` or ``osl``."""
    key = {"rps": "arrival_rps", "isl": "isl_avg", "osl": "osl_avg"}[what]
    x, y, mode = _ts_step(report, key)
    lines: list[Line] = []
    if _has(y):
        lines.append(Line("observed", x, y, OBSERVED_COLOUR, width=1.5, mode=mode))
    px, py = _tick_series(planner_ticks(report), f"predicted_{what}", drop_null=True)
    if _has(py):
        lines.append(Line("predicted (planner)", px, py, PREDICTED_COLOUR, dash="dot", shape="hv", width=2.2,
                          connect_gaps=True, mode="lines+markers"))
    return lines


def latency_data(report: dict[str, Any], metric: str) -> list[Line]:
    """Observed average per interval (requests completing in it) and the planner's estimate, vs the SLA line.
    ``metric``: ``ttft`` or ``itl``."""
    x, y, mode = _ts_step(report, f"{metric}_ms_avg")
    lines: list[Line] = []
    if _has(y):
        lines.append(Line("observed avg", x, y, OBSERVED_COLOUR, width=1.5, mode=mode,
                          hover="observed avg %{y:,.1f} ms<extra></extra>"))
    ticks = planner_ticks(report)
    ex, ey = _tick_series(ticks, f"est_{metric}_ms")
    if _has(ey):
        ex, ey = envelope_downsample(ex, ey, MAX_TICK_POINTS)
        lines.append(Line("planner estimate", ex, ey, ESTIMATE_COLOUR, dash="dot", width=1.2,
                          hover="estimate %{y:,.1f} ms<extra></extra>"))
    sla = sla_targets(report)[f"{metric}_ms"]
    if sla is not None and lines:
        lines.append(Line(f"SLA {sla:,.0f} ms", np.array([0.0, horizon_s(report)]), np.array([sla, sla]),
                          SLA_COLOUR, dash="dash", width=1.4, hover=f"SLA {sla:,.0f} ms<extra></extra>"))
    return lines


@dataclass
class Attainment:
    x: F64  # bin centres
    y: F64  # share of the interval's requests (by arrival) that met every SLA; NaN: no arrival
    width: float
    goal: float
    overall: float | None
    met: npt.NDArray[np.bool_]

    @property
    def intervals(self) -> int:
        return int(np.isfinite(self.y).sum())

    @property
    def intervals_met(self) -> int:
        return int(self.met.sum())


def attainment_data(report: dict[str, Any]) -> Attainment | None:
    """SLA attainment per interval (``timeseries.sla_attainment``); None when no SLA was given."""
    t, w = _bins(report)
    y = _f64(_get(report, "timeseries", "sla_attainment"))
    if y.size == 0 or y.size != t.size or not _has(y):
        return None
    overall = _get(report, "sla", "attainment")
    met = np.isfinite(y) & (y >= ATTAINMENT_GOAL - 1e-12)
    return Attainment(t + w / 2, y, w, ATTAINMENT_GOAL, float(overall) if _finite(overall) else None, met)


@dataclass
class EngineSeries:
    worker: int
    x: F64
    y: F64


@dataclass
class EngineLoad:
    pool: str
    engines: list[EngineSeries]
    capacity: float | None  # KV capacity line (tokens per engine); None for the prefill queue
    cluster_max: Line | None = None
    cluster_median: Line | None = None


def _bin_series(t: F64, y: F64, width: float) -> tuple[F64, F64]:
    """Flat per-bin segments; past ``MAX_SERIES_POINTS // 2`` bins, the min/max envelope of the bins instead."""
    if t.size <= MAX_SERIES_POINTS // 2:
        return step_segments(t, y, width)
    return envelope_downsample(t, y, MAX_SERIES_POINTS)


def _alive_span(*series: F64) -> tuple[int, int] | None:
    ok = np.zeros(series[0].size, dtype=bool)
    for s in series:
        if s.size == ok.size:
            ok |= np.isfinite(s)
    idx = np.flatnonzero(ok)
    return (int(idx[0]), int(idx[-1])) if idx.size else None


def _worker_values(w: dict[str, Any], key: str, cap_tokens: float | None) -> F64:
    if key == "total_kv_tokens_max" and w.get(key) is None:
        # older reports: in flight (KV fraction × capacity) + queued prompt tokens, both per-bin maxima
        kv = _f64(w.get("kv_used_fraction_max"))
        q = _f64(w.get("queued_prefill_tokens_max"))
        if kv.size == 0 or cap_tokens is None:
            return np.zeros(0)
        if q.size != kv.size:
            q = np.zeros(kv.size)
        return kv * cap_tokens + np.nan_to_num(q)
    return _f64(w.get(key))


def engine_load_data(report: dict[str, Any], pool: str, key: str = "total_kv_tokens_max") -> EngineLoad | None:
    """Per-engine series of a pool (``total_kv_tokens_max``: queued + in-flight tokens; or
    ``queued_prefill_tokens_max``), each cut to the bins where the engine stepped, as steps; the KV capacity
    line for KV series. Long series are downsampled to min/max envelopes."""
    p = _get(report, "timeseries", "pools", pool)
    if not isinstance(p, dict):
        return None
    t, w = _bins(report)
    cap = p.get("kv_capacity_tokens")
    if not _finite(cap):
        cap = _get(report, "pools", pool, "kv_capacity_tokens")
    cap_f = float(cap) if _finite(cap) else None
    engines: list[EngineSeries] = []
    stacked: list[F64] = []
    for wk in p.get("workers") or []:
        y = _worker_values(wk, key, cap_f)
        if y.size != t.size or y.size == 0:
            continue
        stacked.append(y)
        span = _alive_span(y)
        if span is None:
            continue
        a, b = span
        x, yy = _bin_series(t[a:b + 1], y[a:b + 1], w)
        engines.append(EngineSeries(int(wk.get("id", len(engines))), x, yy))
    if not engines:
        return None
    out = EngineLoad(pool, engines, cap_f if key != "queued_prefill_tokens_max" else None)
    if len(engines) > MANY_ENGINES:
        m = np.vstack(stacked)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mx = np.nanmax(m, axis=0)
                med = np.nanmedian(m, axis=0)
        x, y = _bin_series(t, mx, w)
        out.cluster_max = Line("max over engines", x, y, "#000000", width=1.4)
        x, y = _bin_series(t, med, w)
        out.cluster_median = Line("median engine", x, y, "#000000", dash="dot", width=1.4)
    return out


@dataclass
class Heatmap:
    pool: str
    x: F64  # bin centres
    z: F64  # lanes × bins, busy fraction, NaN outside a worker's life
    worker: F64  # lanes × bins, worker id shown in the hover, NaN where no worker
    lanes: int


def utilisation_heatmap(report: dict[str, Any], pool: str) -> Heatmap | None:
    """Per-worker busy fraction per interval as a heat map. Workers that come and go (a planner run) are packed
    into lanes: a lane is reused once its previous worker has gone, so the rows are at most the peak number of
    workers alive at once. A worker's life is taken as its first to last interval with an engine step."""
    p = _get(report, "timeseries", "pools", pool)
    if not isinstance(p, dict):
        return None
    t, w = _bins(report)
    rows: list[tuple[int, int, int, F64]] = []
    for wk in p.get("workers") or []:
        busy = _f64(wk.get("busy_fraction"))
        kv = _f64(wk.get("kv_used_fraction_max"))
        if busy.size != t.size:
            continue
        span = _alive_span(kv, _f64(wk.get("queued_prefill_tokens_max"))) if kv.size == t.size else None
        if span is None:
            nz = np.flatnonzero(np.nan_to_num(busy) > 0)
            if not nz.size:
                continue
            span = (int(nz[0]), int(nz[-1]))
        rows.append((span[0], span[1], int(wk.get("id", len(rows))), busy))
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[2]))
    lane_end: list[int] = []
    z = np.full((len(rows), t.size), np.nan)
    wid = np.full((len(rows), t.size), np.nan)
    for a, b, ident, busy in rows:
        lane = next((i for i, end in enumerate(lane_end) if end < a), None)
        if lane is None:
            lane = len(lane_end)
            lane_end.append(b)
        else:
            lane_end[lane] = b
        z[lane, a:b + 1] = busy[a:b + 1]
        wid[lane, a:b + 1] = ident
    n = len(lane_end)
    return Heatmap(pool, t + w / 2, np.clip(z[:n], 0.0, 1.0), wid[:n], n)


def capacity_data(report: dict[str, Any]) -> list[Line]:
    """Requests/s one engine sustains within the SLA, as the planner estimates it (its throughput ticks)."""
    ticks = planner_ticks(report)
    agg = topology(report) == "agg"
    lines: list[Line] = []
    for comp in ("prefill", "decode"):
        x, y = _tick_series(ticks, f"engine_rps_{comp}", drop_null=True)
        if _has(y):
            name = "per worker" if agg and comp == "decode" else f"per {comp} engine"
            lines.append(Line(name, x, y, AGG_COLOUR if agg else POOL_COLOURS[comp], shape="hv", width=1.8,
                              connect_gaps=True, mode="lines+markers"))
    return lines


@dataclass
class DecisionTrack:
    label: str  # "agg", "prefill", "decode"
    y: float  # track position: agg 1; disagg prefill 2, decode 1
    points: dict[str, tuple[F64, F64]]  # reason → (t, y with the reason's offset)


def reason_colour(kind: str, reason: str, known: Iterable[str] = ()) -> str:
    table = LOAD_REASON_COLOURS if kind == "load" else THROUGHPUT_REASON_COLOURS
    if reason in table:
        return table[reason]
    others = sorted({r for r in known if r not in table} | {reason})
    return FALLBACK_COLOURS[others.index(reason) % len(FALLBACK_COLOURS)]


def decision_data(report: dict[str, Any], kind: str) -> list[DecisionTrack]:
    """Decision timelines (``kind``: ``load`` or ``throughput``): agg one track at y=1 (``reason_<kind>``);
    disagg prefill at y=2 and decode at y=1 (``reason_<kind>_prefill`` / ``_decode``). Empty when the planner
    made no decision of that kind (or all were ``disabled``)."""
    ticks = planner_ticks(report)
    if not ticks:
        return []
    agg = topology(report) == "agg"
    tracks_def = [("agg", 1.0, (f"reason_{kind}", f"reason_{kind}_decode"))] if agg else [
        ("prefill", 2.0, (f"reason_{kind}_prefill",)), ("decode", 1.0, (f"reason_{kind}_decode",))]
    tracks: list[DecisionTrack] = []
    for label, ypos, keys in tracks_def:
        pts: dict[str, tuple[list[float], list[float]]] = {}
        for t in ticks:
            r = next((t.get(k) for k in keys if t.get(k) is not None), None)
            if r is None or not _finite(t.get("t_s")):
                continue
            xs, ys = pts.setdefault(str(r), ([], []))
            xs.append(float(t["t_s"]))
            ys.append(ypos + REASON_OFFSET.get(str(r), 0.0))
        if pts and set(pts) != {"disabled"}:
            tracks.append(DecisionTrack(label, ypos, {r: (np.asarray(a), np.asarray(b)) for r, (a, b) in pts.items()}))
    return tracks


@dataclass
class GpuData:
    x: F64
    per_pool: dict[str, F64]  # GPUs provisioned per pool at each step
    cumulative_gpu_hours: F64
    total_gpu_hours: float | None  # the report's exact figure (cost.gpu_hours)


def gpu_data(report: dict[str, Any]) -> GpuData | None:
    """GPUs in use per pool (provisioned workers × GPUs per worker, at each interval's end) and the cumulative
    GPU-hours they add up to (a step integral over the intervals, so it ends close to, not exactly at,
    ``cost.gpu_hours``, which integrates the exact provisioning times)."""
    t, w = _bins(report)
    if t.size == 0:
        return None
    per: dict[str, F64] = {}
    for name in pool_names(report):
        g = _f64(_get(report, "timeseries", "pools", name, "gpus"))
        if g.size == t.size:
            per[name] = g
    if not per:
        return None
    exact = [_f64(_get(report, "timeseries", "pools", n, "gpu_seconds")) for n in per]
    if all(e.size == t.size for e in exact):
        gsec = np.nansum(np.vstack(exact), axis=0)
    else:
        gsec = np.nansum(np.vstack(list(per.values())), axis=0) * w
    cum = np.concatenate([[0.0], np.cumsum(gsec) / 3600.0])
    x = np.append(t, t[-1] + w)
    total = _get(report, "cost", "gpu_hours")
    return GpuData(x, {k: np.append(v, v[-1]) for k, v in per.items()}, cum,
                   float(total) if _finite(total) else None)


def prefix_hit_data(report: dict[str, Any]) -> list[Line]:
    x, y, mode = _ts_step(report, "prefix_cache_hit_rate")
    if not _has(y):
        return []
    lines = [Line("per interval", x, y, "#31a354", width=1.5, mode=mode,
                  hover="hit rate %{y:.1%}<extra></extra>")]
    overall = _get(report, "metrics", "prefix_cache_hit_rate")
    if _finite(overall):
        lines.append(Line(f"whole run {overall:.1%}", np.array([0.0, horizon_s(report)]),
                          np.array([overall, overall]), "#31a354", dash="dash", width=1.2))
    return lines


@dataclass
class Cdf:
    metric: str  # ttft_ms | itl_ms | request_latency_ms
    title: str
    values: F64  # latency (ms) at each percent
    percent: F64  # 0..100
    sla: float | None
    within_sla: float | None  # share of requests ≤ SLA, read off the CDF


CDF_TITLES = {"ttft_ms": "TTFT", "itl_ms": "ITL (per request)", "request_latency_ms": "Request latency (E2E)"}


def cdf_data(report: dict[str, Any]) -> list[Cdf]:
    """Latency CDFs from ``timeseries.cdf`` (101 quantiles of completed requests), with the SLA and the share of
    requests within it."""
    cdf = _get(report, "timeseries", "cdf") or {}
    pct = _f64(cdf.get("percent"))
    sla = sla_targets(report)
    out: list[Cdf] = []
    for key, sla_key in (("ttft_ms", "ttft_ms"), ("itl_ms", "itl_ms"), ("request_latency_ms", "e2e_ms")):
        v = _f64(cdf.get(key))
        if v.size == 0 or v.size != pct.size or not _has(v):
            continue
        s = sla[sla_key]
        within = None
        if s is not None:
            within = 0.0 if s < v[0] else 1.0 if s >= v[-1] else float(np.interp(s, v, pct)) / 100.0
        out.append(Cdf(key, CDF_TITLES[key], v, pct, s, within))
    return out


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


def _latency_panel(report: dict[str, Any], metric: str) -> Panel | None:
    lines = latency_data(report, metric)
    if not lines:
        return None
    title = f"{metric.upper()}: observed vs SLA" + (" and planner estimate" if planner_ticks(report) else "")
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


def _attainment_panel(report: dict[str, Any]) -> Panel | None:
    a = attainment_data(report)
    if a is None:
        return None
    ok = np.isfinite(a.y)
    colours = [GOOD_COLOUR if m else BAD_COLOUR for m in a.met[ok]]
    traces: list[dict[str, Any]] = [{
        "type": "bar", "name": "per interval (by arrival)", "x": _round_list(a.x[ok], 3),
        "y": _round_list(a.y[ok], 4), "width": a.width, "marker": {"color": colours, "line": {"width": 0}},
        "hovertemplate": "%{y:.1%} of the interval's requests met the SLA<extra></extra>", "showlegend": False,
    }, _trace(Line(f"goal {a.goal:.0%}", np.array([0.0, horizon_s(report)]), np.array([a.goal, a.goal]),
                   SLA_COLOUR, dash="dash", width=1.4))]
    if a.overall is not None:
        traces.append(_trace(Line(f"whole run {format_attainment(a.overall)}", np.array([0.0, horizon_s(report)]),
                                  np.array([a.overall, a.overall]), GOOD_COLOUR if a.overall >= a.goal else BAD_COLOUR,
                                  dash="dot", width=1.6)))
    # legend swatches for the bar colours
    for name, colour in ((f"interval ≥ {a.goal:.0%}", GOOD_COLOUR), (f"interval < {a.goal:.0%}", BAD_COLOUR)):
        traces.append({"type": "bar", "name": name, "x": [None], "y": [None], "marker": {"color": colour},
                       "showlegend": True, "hoverinfo": "skip"})
    note = f"{a.intervals_met} of {a.intervals} intervals met the {a.goal:.0%} goal"
    return Panel("attainment", "SLA attainment per interval (share of requests meeting every SLA)", traces,
                 {"title": {"text": "met SLA"}, "tickformat": ".0%", "range": [0, 1.05]}, 160, note)


def _engine_panel(report: dict[str, Any], pool: str, key: str, title: str) -> Panel | None:
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


def _heatmap_panel(report: dict[str, Any], pool: str) -> Panel | None:
    hm = utilisation_heatmap(report, pool)
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
        "name": f"utilisation {pool}",
    }
    height = int(min(320, max(90, 14 * hm.lanes + 40)))
    who = "worker" if pool == "agg" else f"{pool} worker"
    title = f"Utilisation per {who} (share of each interval the engine was stepping)"
    note = "rows reuse a slot once its worker has gone" if hm.lanes < sum(
        1 for _ in (_get(report, "timeseries", "pools", pool, "workers") or [])) else None
    yaxis: dict[str, Any] = {"title": {"text": "slot" if note else "worker"}, "showgrid": False, "zeroline": False,
                             "range": [-0.5, hm.lanes - 0.5], "autorange": False}
    if note is None and hm.lanes <= 12:
        # one worker per row: label the rows with the worker ids
        labels = [next((f"{v:.0f}" for v in row if math.isfinite(v)), "") for row in hm.worker]
        yaxis.update({"tickmode": "array", "tickvals": list(range(hm.lanes)), "ticktext": labels})
    else:
        yaxis.update({"tickmode": "auto", "nticks": min(hm.lanes, 8)})
    return Panel(f"heatmap-{pool}", title, [trace], yaxis, height, note)


def _decision_panel(report: dict[str, Any], kind: str) -> Panel | None:
    tracks = decision_data(report, kind)
    if not tracks:
        return None
    known = {r for tr in tracks for r in tr.points}
    table = LOAD_REASON_COLOURS if kind == "load" else THROUGHPUT_REASON_COLOURS
    order = [r for r in table if r in known] + sorted(known - set(table))
    traces: list[dict[str, Any]] = []
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
                "hovertemplate": f"{tr.label}: {reason}<extra></extra>", "cliponaxis": False,
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


def _gpu_panels(report: dict[str, Any]) -> list[Panel]:
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
    peak = _get(report, "cost", "peak_gpus")
    gpus = Panel("gpus", "GPUs in use (provisioned workers × GPUs per worker)", traces,
                 {"title": {"text": "GPUs"}, "rangemode": "tozero"}, 130,
                 f"peak {int(peak)}" if _finite(peak) else None)
    note = f"run total {g.total_gpu_hours:,.3f} GPU-h" if g.total_gpu_hours is not None else None
    cum = Panel("gpu-hours", "Cumulative GPU-hours", [_trace(Line(
        "GPU-hours", g.x, g.cumulative_gpu_hours, "#636363", width=1.8,
        hover="%{y:,.3f} GPU-h<extra></extra>"))], {"title": {"text": "GPU-h"}, "rangemode": "tozero"}, 130, note)
    return [gpus, cum]


def build_panels(report: dict[str, Any]) -> list[Panel]:
    """The time panels that apply to this run, top to bottom."""
    disagg = topology(report) == "disagg"
    predicted = any(t.get(f"predicted_{k}") is not None for t in planner_ticks(report) for k in ("rps", "isl", "osl"))
    vs_pred = ": observed vs predicted" if predicted else " (observed)"
    panels: list[Panel | None] = [
        _attainment_panel(report),
        _latency_panel(report, "ttft"),
        _latency_panel(report, "itl"),
        _lines_panel("replicas", "Replicas" + (" per component" if disagg else "") + " with throughput floors",
                     replica_data(report), {"title": {"text": "replicas"}, "rangemode": "tozero"}, 170),
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


def time_figure(report: dict[str, Any]) -> dict[str, Any] | None:
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
            if "hovertemplate" in tr:
                tr["hovertemplate"] = "%{x:,.0f} s · " + tr["hovertemplate"]
            if tr.get("type") == "heatmap":
                tr["colorbar"] = {**tr.get("colorbar", {}), "x": 1.01, "xanchor": "left", "y": dom[1],
                                  "yanchor": "top", "len": (dom[1] - dom[0]), "lenmode": "fraction"}
            else:
                tr["legend"] = legend
            data.append(tr)
    return {"data": data, "layout": layout}


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """1-2-5 ticks over [lo, hi] (log axis), thinned to powers of ten when the range spans many decades."""
    lo, hi = max(lo, 1e-6), max(hi, lo * 1.0001)
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    span = math.log10(hi / lo)
    mults: tuple[int, ...] = (1, 2, 5) if span <= 2.2 else (1, 3) if span <= 3.6 else (1,)
    vals = [m * 10.0**d for d in decades for m in mults if lo * 0.89 <= m * 10.0**d <= hi * 1.26]
    return vals, [f"{v / 1000:g}k" if v >= 1000 else f"{v:g}" for v in vals]


def cdf_figure(report: dict[str, Any]) -> dict[str, Any] | None:
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


# ---------------------------------------------------------------------------------------------- summary block
def _fmt_ms(v: Any) -> str:
    if not _finite(v):
        return "—"
    return f"{v:,.0f} ms" if abs(v) >= 100 or float(v).is_integer() else f"{v:,.1f} ms"


def _num(v: Any, nd: int = 0) -> str:
    return "—" if not _finite(v) else f"{v:,.{nd}f}"


def _pct(v: Any) -> str:
    return "—" if not _finite(v) else f"{v * 100:.1f} %"


def format_attainment(v: float) -> str:
    """A share as a percentage truncated (not rounded) to 0.1 %, so 89.97 % never reads as a met 90.0 %."""
    return f"{math.floor(v * 1000 + 1e-9) / 10:.1f} %"


@dataclass
class Verdict:
    status: str  # "met" | "missed" | "none"
    headline: str
    detail: str


def sla_verdict(report: dict[str, Any]) -> Verdict:
    """Was the SLA met? Yes when at least ``ATTAINMENT_GOAL`` of the requests met every SLA given."""
    sla = report.get("sla") or {}
    att = sla.get("attainment")
    parts = [f"{name} ≤ {_fmt_ms(sla.get(k))}" for name, k in (("TTFT", "ttft_ms"), ("ITL", "itl_ms"),
                                                                ("E2E", "e2e_ms")) if _finite(sla.get(k))]
    if not parts or not _finite(att):
        pt = sla_targets(report)
        hint = ""
        if pt["ttft_ms"] is not None or pt["itl_ms"] is not None:
            hint = " The charts draw the planner's targets as SLA lines."
        return Verdict("none", "No SLA given",
                       "Pass --sla-ttft-ms / --sla-itl-ms / --sla-e2e-ms to measure attainment and goodput." + hint)
    req = report.get("requests") or {}
    total = sum(int(req.get(k) or 0) for k in ("completed", "rejected", "unfinished"))
    good = sla.get("good_requests")
    count = f" ({int(good):,} of {total:,} requests)" if _finite(good) and total else ""
    met = att >= ATTAINMENT_GOAL
    a = attainment_data(report)
    per_interval = (f" {a.intervals_met} of {a.intervals} intervals met the goal."
                    if a is not None and a.intervals else "")
    headline = ("SLA met" if met else "SLA missed") + f": {format_attainment(att)} of requests within SLA"
    detail = (f"{format_attainment(att)}{count} met {' and '.join(parts)}; goal ≥ {ATTAINMENT_GOAL:.0%} of requests."
              + per_interval)
    return Verdict("met" if met else "missed", headline, detail)


def _latency_cell(report: dict[str, Any], label: str, metric: str, sla_key: str) -> str:
    stats = _get(report, "metrics", metric) or {}
    sla = sla_targets(report).get(sla_key)

    def span(v: Any) -> str:
        cls = "" if sla is None or not _finite(v) else (" ok" if v <= sla else " bad")
        return f'<span class="v{cls}">{_fmt_ms(v)}</span>'

    sla_txt = f'<div class="sub">SLA {_fmt_ms(sla)}</div>' if sla is not None else '<div class="sub">no SLA</div>'
    return (f'<div class="card"><div class="k">{label} avg · p90</div>'
            f'<div class="big">{span(stats.get("avg"))} · {span(stats.get("p90"))}</div>{sla_txt}</div>')


def describe_engines(cfg: dict[str, Any]) -> str:
    """Hardware and perf model, per pool when the config gives them per pool (``{"prefill": ..., ...}``) and
    they differ; once when they are the same or given for the single pool."""
    hw = cfg.get("hardware")
    perf = cfg.get("perf_model")

    def one(h: Any, p: Any) -> str:
        txt = str(h.get("describe") or h.get("gpu") or "") if isinstance(h, dict) else ""
        return " · ".join(x for x in (txt, str(p) if isinstance(p, str) else "") if x)

    if isinstance(hw, dict) and "describe" not in hw and "gpu" not in hw:
        names = list(hw) or (list(perf) if isinstance(perf, dict) else [])
        parts = {n: one(hw.get(n), perf.get(n) if isinstance(perf, dict) else perf) for n in names}
        if len(set(parts.values())) == 1:
            return next(iter(parts.values()))
        return "; ".join(f"{n}: {d}" for n, d in parts.items())
    return one(hw, perf if not isinstance(perf, dict) else next(iter(perf.values()), ""))


def _describe_topology(report: dict[str, Any]) -> tuple[str, str]:
    cfg = report.get("config") or {}
    pools = report.get("pools") or {}
    pc = cfg.get("planner_config") or _get(report, "planner", "config")
    parts: list[str] = []
    if topology(report) == "disagg":
        for name in ("prefill", "decode"):
            p = pools.get(name) or {}
            start = p.get("workers_start", cfg.get(f"num_{name}_workers"))
            peak = p.get("workers_peak")
            txt = f"{_num(start)} {name}"
            if _finite(peak) and peak != start:
                txt += f" (peak {int(peak)})"
            parts.append(txt)
        main = "disagg · " + " + ".join(parts)
    else:
        p = pools.get("agg") or {}
        start = p.get("workers_start", cfg.get("num_workers"))
        peak = p.get("workers_peak")
        main = f"agg · {_num(start)} worker{'s' if start != 1 else ''}"
        if _finite(peak) and peak != start:
            main += f" at start, peak {int(peak)}"
    router = cfg.get("router")
    if router:
        main += f" · router {router}"
    if isinstance(pc, dict):
        modes = [m for m, on in (("load", pc.get("enable_load_scaling")),
                                 ("throughput", pc.get("enable_throughput_scaling"))) if on]
        planner = (f"planner: {pc.get('optimization_target', '?')} target, {pc.get('load_predictor', '?')} predictor"
                   + (f", {' + '.join(modes)} scaling" if modes else ""))
    else:
        planner = "no planner (fixed workers)"
    return main, planner


CSS = """
:root { --ok:#1e8e3e; --bad:#c5221f; --muted:#666; --line:#e3e3e3; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222;
       background: #fafafa; }
header { padding: 18px 24px 8px; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: var(--muted); font-size: 13px; }
.verdict { display: flex; gap: 14px; align-items: center; margin: 14px 0 10px; padding: 12px 16px;
           border-radius: 8px; border: 1px solid; }
.verdict.met { background: #e6f4ea; border-color: #a8dab5; }
.verdict.missed { background: #fce8e6; border-color: #f5b7b1; }
.verdict.none { background: #f1f3f4; border-color: #dadce0; }
.badge { font-weight: 700; font-size: 15px; padding: 4px 10px; border-radius: 4px; color: #fff;
         white-space: nowrap; }
.met .badge { background: var(--ok); } .missed .badge { background: var(--bad); } .none .badge { background: #777; }
.verdict .head { font-weight: 600; font-size: 16px; } .verdict .detail { font-size: 13px; color: #333; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 8px; margin: 6px 0 8px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.card .k { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.card .big { font-size: 17px; font-weight: 600; margin-top: 2px; }
.card .sub { font-size: 12px; color: var(--muted); margin-top: 2px; }
.v.ok { color: var(--ok); } .v.bad { color: var(--bad); }
.toolbar { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.95); border-bottom: 1px solid
           var(--line); padding: 6px 24px; font-size: 13px; display: flex; gap: 14px; align-items: center; }
.toolbar button { font: inherit; padding: 3px 10px; border: 1px solid #bbb; border-radius: 4px; background: #fff;
                  cursor: pointer; }
.toolbar button:hover { background: #f1f3f4; }
.toolbar .range { color: var(--muted); font-variant-numeric: tabular-nums; }
section { background: #fff; margin: 0; padding: 4px 12px 8px; }
section h2 { font-size: 15px; margin: 14px 12px 0; }
.hint { color: var(--muted); font-size: 12px; margin: 2px 12px 0; }
footer { color: var(--muted); font-size: 12px; padding: 10px 24px 24px; }
"""

#: relabels the elapsed-time ticks (m:ss / h:mm:ss) of every time axis after a zoom, pan or reset; keeps the
#: toolbar's range text; TIME_STEPS and the label format mirror time_ticks() / format_elapsed()
SCRIPT = """
(function () {
  var gd = document.getElementById(%(div)s);
  var steps = %(steps)s, maxTicks = %(max_ticks)d, axes = %(axes)s;
  function fmt(s, step) {
    var neg = s < 0; s = Math.abs(s);
    var dec = step < 1 ? Math.min(3, Math.max(1, Math.ceil(-Math.log10(step) - 1e-9))) : 0;
    var p = Math.pow(10, dec), tot = Math.round(s * p) / p;
    var h = Math.floor(tot / 3600), m = Math.floor((tot - h * 3600) / 60), sec = tot - h * 3600 - m * 60;
    var st = dec ? sec.toFixed(dec) : String(Math.round(sec));
    var w = dec ? 3 + dec : 2; while (st.length < w) st = '0' + st;
    var out = h ? h + ':' + (m < 10 ? '0' : '') + m + ':' + st : m + ':' + st;
    return neg ? '-' + out : out;
  }
  function ticks(r) {
    var span = Math.max(r[1] - r[0], 1e-9), step = steps[steps.length - 1];
    for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= maxTicks) { step = steps[i]; break; } }
    var vals = [], text = [];
    for (var k = Math.ceil(r[0] / step - 1e-9); k * step <= r[1] + 1e-9 && vals.length < 10 * maxTicks; k++) {
      var v = Math.round(k * step * 1e6) / 1e6; vals.push(v); text.push(fmt(v, step));
    }
    return [vals, text];
  }
  var label = document.getElementById('llmreplay-range');
  function showRange(r) {
    if (label) { label.textContent = 'showing ' + fmt(Math.max(r[0], 0), 1) + ' – ' + fmt(r[1], 1); }
  }
  function relabel() {
    var r = gd._fullLayout.xaxis.range.map(Number), t = ticks(r), upd = {};
    axes.forEach(function (a) { upd[a + '.tickvals'] = t[0]; upd[a + '.ticktext'] = t[1]; });
    showRange(r);
    return Plotly.relayout(gd, upd);
  }
  gd.on('plotly_relayout', function (ev) {
    if (Object.keys(ev).some(function (k) { return k.indexOf('range') >= 0 || k.indexOf('autorange') >= 0; })) {
      relabel();
    }
  });
  var reset = document.getElementById('llmreplay-reset');
  if (reset) {
    reset.addEventListener('click', function () {
      Plotly.relayout(gd, {'xaxis.range': [0, %(end)s], 'xaxis.autorange': false});
    });
  }
  // the ticks of the initial range come with the figure: no relayout needed at load
  showRange(gd._fullLayout.xaxis.range.map(Number));
  window.llmreplayReport = {gd: gd, relabel: relabel, format: fmt};
})();
"""


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


def summary_html(report: dict[str, Any]) -> str:
    cfg = report.get("config") or {}
    req = report.get("requests") or {}
    cost = report.get("cost") or {}
    metrics = report.get("metrics") or {}
    sim = report.get("sim") or {}
    sla = report.get("sla") or {}
    trace = str(cfg.get("trace") or "trace")
    trace_name = Path(trace).name
    v = sla_verdict(report)
    main, planner = _describe_topology(report)
    tr = replica_transitions(report)
    dur = metrics.get("duration_s")
    sim_s = sim.get("simulated_s")
    e = html.escape
    trans_sub = "no planner" if not planner_ticks(report) and not tr.total else (
        f"{tr.up} up, {tr.down} down" + (f" · {tr.reversals} reversal{'s' if tr.reversals != 1 else ''} (flapping)"
                                         if tr.reversals is not None else ""))
    if tr.by_component and len(tr.by_component) > 1:
        trans_sub += " · " + ", ".join(f"{k} {n}" for k, n in sorted(tr.by_component.items()))
    rejected = int(req.get("rejected") or 0)
    unfinished = int(req.get("unfinished") or 0)
    lost = rejected + unfinished
    att = sla.get("attainment")
    att_txt = format_attainment(att) if _finite(att) else "—"
    cards = [
        f'<div class="card"><div class="k">SLA attainment</div><div class="big"><span class="v '
        f'{"ok" if v.status == "met" else "bad" if v.status == "missed" else ""}">{att_txt}'
        f'</span></div><div class="sub">goodput {_num(sla.get("goodput_rps"), 3)} req/s</div></div>',
        _latency_cell(report, "TTFT", "ttft_ms", "ttft_ms"),
        _latency_cell(report, "ITL", "itl_ms", "itl_ms"),
        _latency_cell(report, "Request latency", "request_latency_ms", "e2e_ms"),
        f'<div class="card"><div class="k">GPU-hours</div><div class="big">{_num(cost.get("gpu_hours"), 3)}</div>'
        f'<div class="sub">peak {_num(cost.get("peak_gpus"))} GPUs · {_num(cost.get("energy_kwh"), 3)} kWh</div></div>',
        f'<div class="card"><div class="k">Replica transitions</div><div class="big">{tr.total:,}</div>'
        f'<div class="sub">{e(trans_sub)}</div></div>',
        f'<div class="card"><div class="k">Requests</div><div class="big">{_num(req.get("completed"))} done</div>'
        f'<div class="sub"><span class="v {"bad" if lost else ""}">{rejected:,} rejected · {unfinished:,} '
        f'unfinished</span></div></div>',
        f'<div class="card"><div class="k">Throughput</div><div class="big">'
        f'{_num(metrics.get("request_throughput_rps"), 2)} req/s</div><div class="sub">'
        f'{_num(metrics.get("output_token_throughput_tps"), 0)} output tokens/s</div></div>',
        f'<div class="card"><div class="k">Prefix-cache hit rate</div><div class="big">'
        f'{_pct(metrics.get("prefix_cache_hit_rate"))}</div><div class="sub">of prompt tokens</div></div>',
    ]
    sla_txt = ", ".join(f"{n} ≤ {_fmt_ms(sla.get(k))}" for n, k in (("TTFT", "ttft_ms"), ("ITL", "itl_ms"),
                                                                      ("E2E", "e2e_ms")) if _finite(sla.get(k)))
    meta = [
        f"<b>Trace</b> {e(trace_name)} · {_num(cfg.get('trace_requests') or req.get('total'))} requests · "
        f"{format_elapsed(float(dur)) if _finite(dur) else '—'} of traffic"
        + (f" (simulated {format_elapsed(float(sim_s))})" if _finite(sim_s) else ""),
        f"<b>Topology</b> {e(main)} · {e(planner)}",
        f"<b>Engine</b> {e(describe_engines(cfg))}",
        f"<b>SLA</b> {e(sla_txt) if sla_txt else 'none given'}",
    ]
    return (
        "<header>\n"
        f"<h1>llmreplay run report — {e(trace_name)}</h1>\n"
        + "".join(f'<div class="meta">{m}</div>\n' for m in meta)
        + f'<div class="verdict {v.status}"><span class="badge">'
        f'{ {"met": "SLA MET", "missed": "SLA MISSED", "none": "NO SLA"}[v.status]}</span>'
        f'<div><div class="head">{e(v.headline)}</div><div class="detail">{e(v.detail)}</div></div></div>\n'
        f'<div class="cards">{"".join(cards)}</div>\n'
        "</header>\n"
    )


def render_html(report: dict[str, Any], plotlyjs: str = "inline") -> str:
    """The whole report page. ``plotlyjs``: ``"inline"`` embeds plotly.js (works offline, ~5 MB more) or
    ``"cdn"`` loads it from cdn.plot.ly (small file, needs network to view)."""
    lib = _plotly_script(plotlyjs)
    tfig = time_figure(report)
    cfig = cdf_figure(report)
    sim = report.get("sim") or {}
    body = [summary_html(report)]
    if tfig is not None:
        end = float(tfig["layout"]["xaxis"]["range"][1])
        axes = [k for k in tfig["layout"] if k.startswith("xaxis")]
        body.append(
            '<div class="toolbar"><button id="llmreplay-reset" type="button">Reset time range</button>'
            f'<span class="range" id="llmreplay-range">showing {format_elapsed(0)} – {format_elapsed(end)}</span>'
            "<span>Drag on any chart to zoom: every time chart follows. Double-click to zoom out. "
            "Click a legend entry to hide it.</span></div>\n")
        body.append('<section id="timeline">\n' + _plot_div("llmreplay-timeline", tfig) + "\n</section>\n")
        script = SCRIPT % {"div": json.dumps("llmreplay-timeline"), "steps": json.dumps(list(TIME_STEPS_S)),
                           "max_ticks": MAX_TIME_TICKS, "axes": json.dumps(axes), "end": json.dumps(end)}
        body.append(f"<script>{_safe_script(script)}</script>\n")
    else:
        body.append('<section><p class="hint">This report has no time series to draw.</p></section>\n')
    if cfig is not None:
        body.append('<section id="cdfs"><h2>Latency distributions (completed requests)</h2>'
                    '<p class="hint">Share of requests at or below each latency; the dashed line is the SLA.</p>\n'
                    + _plot_div("llmreplay-cdfs", cfig) + "\n</section>\n")
    body.append(baselines_section(report))
    body.append("<script>window.llmreplayRenderedMs = performance.now();</script>\n")
    version = sim.get("version")
    body.append(f"<footer>llmreplay {e_str(version)} · schema {e_str(report.get('schema'))} · "
                "times are elapsed simulated time (m:ss)</footer>\n")
    title = f"llmreplay report — {Path(str(_get(report, 'config', 'trace') or 'run')).name}"
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<style>{CSS}</style>\n{lib}\n</head>\n<body>\n" + "".join(body) + "</body>\n</html>\n")


def e_str(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def write_html_report(report: dict[str, Any], path: str | Path, plotlyjs: str = "inline") -> Path:
    """Render and write the report; returns the path written (parent directories are created)."""
    p = Path(path)
    text = render_html(report, plotlyjs)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
