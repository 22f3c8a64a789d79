"""The numbers behind each chart and card of the HTML report, read from the typed run report.

Every function takes a :class:`~llmreplay.report.model.RunReport` and returns numpy arrays or small dataclasses,
so the pictures' data are unit-tested without a browser. Nothing here computes a metric: values come from the
report, which the metric definitions (:mod:`llmreplay.metrics.definitions`) filled.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import numpy as np
import numpy.typing as npt

from llmreplay.metrics.definitions import PREFIX_HIT_RATE, SLA_ATTAINMENT
from llmreplay.report.model import PlannerTick, RunReport, WorkerSeries
from llmreplay.report.style import (
    AGG_COLOUR,
    BAD_COLOUR,
    ESTIMATE_COLOUR,
    FALLBACK_COLOURS,
    GOOD_COLOUR,
    LOAD_REASON_COLOURS,
    NEUTRAL_COLOUR,
    OBSERVED_COLOUR,
    POOL_COLOURS,
    PREDICTED_COLOUR,
    REASON_OFFSET,
    SLA_COLOUR,
    THROUGHPUT_REASON_COLOURS,
)

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


# ---------------------------------------------------------------------------------------------- small helpers
def _f64(values: Iterable[Any] | None) -> F64:
    """A float array with NaN for None / missing values."""
    if values is None:
        return np.zeros(0)
    return np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _finite(v: Any) -> TypeGuard[float]:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def step_segments(t: F64, y: F64, width: float, active: F64 | None = None) -> tuple[F64, F64]:
    """Per-interval values as flat segments [t, t + width) joined where bins are adjacent and broken (NaN) after
    a bin with no value, drawn with a plain line. Unlike ``line_shape='hv'``, a lone bin between two empty ones
    still shows. Each finite value appears twice in a row in the output. With ``active`` (requests in flight per
    bin), a run of empty bins in which requests were in flight is bridged (the line joins across it): the line
    breaks only where nothing was in flight."""
    ok = np.isfinite(y)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return np.zeros(0), np.zeros(0)
    brk = np.ones(idx.size, dtype=bool)  # break after this bin?
    brk[:-1] = idx[1:] != idx[:-1] + 1
    if active is not None and active.size == y.size:
        busy = np.nan_to_num(active) > 0
        for k in np.flatnonzero(brk[:-1]):
            if busy[idx[k] + 1:idx[k + 1]].all():
                brk[k] = False
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
def topology(report: RunReport) -> str:
    """``"agg"`` or ``"disagg"``, from the pools (the planner config's ``mode`` may be null)."""
    pools = set(report.pools) | set(report.timeseries.pools)
    if "prefill" in pools or "decode" in pools:
        return "disagg"
    if report.config.topology in ("agg", "disagg"):
        return report.config.topology
    mode = (report.config.planner_config or {}).get("mode")
    return "disagg" if mode == "disagg" else "agg"


def pool_names(report: RunReport) -> list[str]:
    pools = report.timeseries.pools or report.pools
    order = ["agg", "prefill", "decode"]
    return [p for p in order if p in pools] + sorted(p for p in pools if p not in order)


def planner_ticks(report: RunReport) -> list[PlannerTick]:
    return list(report.planner.ticks) if report.planner is not None else []


def planner_config(report: RunReport) -> dict[str, Any]:
    if report.config.planner_config:
        return report.config.planner_config
    return report.planner.config if report.planner is not None else {}


def sla_targets(report: RunReport) -> dict[str, float | None]:
    """SLA lines: the run's SLA (``--sla-*``), else the planner's targets (``ttft``/``itl`` in its config)."""
    sla = report.sla
    pc = planner_config(report)
    ttft = sla.ttft_ms if sla.ttft_ms is not None else pc.get("ttft")
    itl = sla.itl_ms if sla.itl_ms is not None else pc.get("itl")
    return {"ttft_ms": float(ttft) if _finite(ttft) else None, "itl_ms": float(itl) if _finite(itl) else None,
            "e2e_ms": sla.e2e_ms}


def horizon_s(report: RunReport) -> float:
    ts = report.timeseries
    end = (float(ts.t_s[-1]) + float(ts.bin_s)) if ts.t_s else 0.0
    ticks = planner_ticks(report)
    last_tick = max(float(t.last_t_s) for t in ticks) if ticks else 0.0  # a collapsed entry ends after t_s
    return max(end if end > 0 else report.sim.simulated_s, last_tick, 1e-3)


@dataclass
class Transitions:
    total: int
    up: int
    down: int
    reversals: int
    by_component: dict[str, int] = field(default_factory=dict)


def replica_transitions(report: RunReport) -> Transitions:
    """Actual changes of a replica count (not decision ticks): from ``planner.events`` where ``from != to``,
    else from changes between consecutive ticks, else ``cost.replica_transitions``."""
    rev = report.cost.reversals
    ticks = planner_ticks(report)
    by: dict[str, int] = {}
    up = down = 0
    if report.planner is not None and report.planner.events:
        for e in report.planner.events:
            if e.from_ == e.to:
                continue
            by[e.component] = by.get(e.component, 0) + 1
            up += e.to > e.from_
            down += e.to < e.from_
        return Transitions(up + down, up, down, rev, by)
    if ticks:
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
    return Transitions(report.cost.replica_transitions, 0, 0, rev, {})


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
    series: str | None = None  # the timeseries key it draws (the page's interval control redraws it)


def _bins(report: RunReport) -> tuple[F64, float]:
    ts = report.timeseries
    t = _f64(ts.t_s)
    width = float(ts.bin_s or (t[1] - t[0] if t.size > 1 else 1.0))
    return t, width


def _ts_step(report: RunReport, key: str) -> tuple[F64, F64, str]:
    """A per-interval series of ``timeseries`` as flat segments (bridged across empty intervals while requests
    were in flight), and the plot mode that suits its sparsity."""
    t, w = _bins(report)
    y = _f64(report.timeseries.series(key))
    if y.size != t.size:
        return np.zeros(0), np.zeros(0), "lines"
    active = _f64(report.timeseries.active_requests)
    return (*step_segments(t, y, w, active if active.size == t.size else None), _sparse_mode(y))


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


def _tick_series(ticks: Sequence[PlannerTick], key: str, drop_null: bool = False) -> tuple[F64, F64]:
    x = _f64(t.t_s for t in ticks)
    y = _f64(t.get(key) for t in ticks)
    if drop_null:
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
    return x, y


def _has(y: F64) -> bool:
    return bool(y.size and np.isfinite(y).any())


def replica_data(report: RunReport) -> list[Line]:
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


def traffic_data(report: RunReport, what: str) -> list[Line]:
    """Observed (per interval, from ``timeseries``) vs the planner's predicted traffic (gaps connected).
    ``what``: ``rps``, ``isl`` or ``osl``."""
    key = {"rps": "arrival_rps", "isl": "isl_avg", "osl": "osl_avg"}[what]
    x, y, mode = _ts_step(report, key)
    lines: list[Line] = []
    if _has(y):
        lines.append(Line("observed", x, y, OBSERVED_COLOUR, width=1.5, mode=mode, series=key))
    px, py = _tick_series(planner_ticks(report), f"predicted_{what}", drop_null=True)
    if _has(py):
        lines.append(Line("predicted (planner)", px, py, PREDICTED_COLOUR, dash="dot", shape="hv", width=2.2,
                          connect_gaps=True, mode="lines+markers"))
    return lines


def latency_data(report: RunReport, metric: str) -> list[Line]:
    """Observed average per interval (requests completing in it) and the planner's estimate, vs the SLA line.
    ``metric``: ``ttft`` or ``itl``."""
    x, y, mode = _ts_step(report, f"{metric}_ms_avg")
    lines: list[Line] = []
    if _has(y):
        lines.append(Line("observed avg", x, y, OBSERVED_COLOUR, width=1.5, mode=mode,
                          hover="observed avg %{y:,.1f} ms<extra></extra>", series=f"{metric}_ms_avg"))
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


def attainment_data(report: RunReport) -> Attainment | None:
    """SLA attainment per interval (``timeseries.sla_attainment``); None when no SLA was given."""
    t, w = _bins(report)
    y = _f64(report.timeseries.sla_attainment)
    if y.size == 0 or y.size != t.size or not _has(y):
        return None
    overall = report.sla.attainment
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


def _worker_values(w: WorkerSeries, key: str, cap_tokens: float | None) -> F64:
    if key == "total_kv_tokens_max" and w.total_kv_tokens_max is None:
        # older reports: in flight (KV fraction × capacity) + queued prompt tokens, both per-bin maxima
        kv = _f64(w.kv_used_fraction_max)
        q = _f64(w.queued_prefill_tokens_max)
        if kv.size == 0 or cap_tokens is None:
            return np.zeros(0)
        if q.size != kv.size:
            q = np.zeros(kv.size)
        return kv * cap_tokens + np.nan_to_num(q)
    return _f64(getattr(w, key))


def engine_load_data(report: RunReport, pool: str, key: str = "total_kv_tokens_max") -> EngineLoad | None:
    """Per-engine series of a pool (``total_kv_tokens_max``: queued + in-flight tokens; or
    ``queued_prefill_tokens_max``), each cut to the bins where the engine stepped, as steps; the KV capacity
    line for KV series. Long series are downsampled to min/max envelopes."""
    p = report.timeseries.pools.get(pool)
    if p is None:
        return None
    t, w = _bins(report)
    cap: Any = p.kv_capacity_tokens
    if not _finite(cap) and pool in report.pools:
        cap = report.pools[pool].kv_capacity_tokens
    cap_f = float(cap) if _finite(cap) else None
    engines: list[EngineSeries] = []
    stacked: list[F64] = []
    for wk in p.workers:
        y = _worker_values(wk, key, cap_f)
        if y.size != t.size or y.size == 0:
            continue
        stacked.append(y)
        span = _alive_span(y)
        if span is None:
            continue
        a, b = span
        x, yy = _bin_series(t[a:b + 1], y[a:b + 1], w)
        engines.append(EngineSeries(wk.id, x, yy))
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


def utilization_heatmap(report: RunReport, pool: str) -> Heatmap | None:
    """Per-worker busy fraction per interval as a heat map. Workers that come and go (a planner run) are packed
    into lanes: a lane is reused once its previous worker has gone, so the rows are at most the peak number of
    workers alive at once. A worker's life is taken as its first to last interval with an engine step."""
    p = report.timeseries.pools.get(pool)
    if p is None:
        return None
    t, w = _bins(report)
    rows: list[tuple[int, int, int, F64]] = []
    for wk in p.workers:
        busy = _f64(wk.busy_fraction)
        kv = _f64(wk.kv_used_fraction_max)
        if busy.size != t.size:
            continue
        span = _alive_span(kv, _f64(wk.queued_prefill_tokens_max)) if kv.size == t.size else None
        if span is None:
            nz = np.flatnonzero(np.nan_to_num(busy) > 0)
            if not nz.size:
                continue
            span = (int(nz[0]), int(nz[-1]))
        rows.append((span[0], span[1], wk.id, busy))
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


def capacity_data(report: RunReport) -> list[Line]:
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
    hovers: dict[str, list[str]] = field(default_factory=dict)  # reason → each point's diagnostics (HTML)


def reason_colour(kind: str, reason: str, known: Iterable[str] = ()) -> str:
    table = LOAD_REASON_COLOURS if kind == "load" else THROUGHPUT_REASON_COLOURS
    if reason in table:
        return table[reason]
    others = sorted({r for r in known if r not in table} | {reason})
    return FALLBACK_COLOURS[others.index(reason) % len(FALLBACK_COLOURS)]


def decision_data(report: RunReport, kind: str) -> list[DecisionTrack]:
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
        hovers: dict[str, list[str]] = {}
        prev: PlannerTick | None = None
        for t in ticks:
            r = next((t.get(k) for k in keys if t.get(k) is not None), None)
            if r is not None:
                xs, ys = pts.setdefault(str(r), ([], []))
                xs.append(float(t.t_s))
                ys.append(ypos + REASON_OFFSET.get(str(r), 0.0))
                hovers.setdefault(str(r), []).append(tick_hover(report, t, prev, label, kind, str(r)))
            prev = t
        if pts and set(pts) != {"disabled"}:
            tracks.append(DecisionTrack(label, ypos, {r: (np.asarray(a), np.asarray(b)) for r, (a, b) in pts.items()},
                                        hovers))
    return tracks


#: tick diagnostics shown in a decision's hover: (field, label, unit, digits, the SLA key it is judged against)
TICK_FIELDS: tuple[tuple[str, str, str, int, str | None], ...] = (
    ("est_ttft_ms", "estimated TTFT", "ms", 1, "ttft_ms"),
    ("observed_ttft_ms", "observed TTFT", "ms", 1, "ttft_ms"),
    ("est_itl_ms", "estimated ITL", "ms", 2, "itl_ms"),
    ("observed_itl_ms", "observed ITL", "ms", 2, "itl_ms"),
    ("observed_rps", "observed rate", "req/s", 2, None),
    ("predicted_rps", "predicted rate", "req/s", 2, None),
    ("observed_isl", "observed ISL", "tokens", 0, None),
    ("predicted_isl", "predicted ISL", "tokens", 0, None),
    ("observed_osl", "observed OSL", "tokens", 0, None),
    ("predicted_osl", "predicted OSL", "tokens", 0, None),
    ("engine_rps_prefill", "req/s per prefill engine", "req/s", 2, None),
    ("engine_rps_decode", "req/s per decode engine", "req/s", 2, None),
    ("max_batch", "max batch", "", 0, None),
)


def tick_hover(report: RunReport, tick: PlannerTick, prev: PlannerTick | None, track: str, kind: str,
               reason: str) -> str:
    """A decision's hover: time, track and reason, the replica change, then the tick's inputs (estimates against
    the SLA, observed and predicted traffic) and any further diagnostics the planner recorded."""
    from llmreplay.report.timeaxis import format_elapsed

    comps = ("decode",) if track == "agg" else (track,)
    lines = [f"{format_elapsed(tick.t_s)} · {track} {kind}: {reason}"]
    if tick.count and tick.count > 1:  # a collapsed idle stretch: the same tick, once per cycle
        span = f", every {tick.every_s:g} s to {format_elapsed(tick.last_t_s)}" if tick.every_s else ""
        lines[0] += f" (×{tick.count:,} ticks{span})"
    for comp in comps:
        now = tick.get(f"replicas_{comp}")
        before = prev.get(f"replicas_{comp}") if prev is not None else None
        floor = tick.get(f"floor_{comp}")
        if _finite(now):
            change = f"{int(before)} → {int(now)}" if _finite(before) and before != now else f"{int(now)}"
            lines.append(f"replicas {change}" + (f" (floor {int(floor)})" if _finite(floor) else ""))
    sla = sla_targets(report)
    for key, name, unit, digits, sla_key in TICK_FIELDS:
        v = tick.get(key)
        if not _finite(v):
            continue
        text = f"{name} {v:,.{digits}f}{' ' + unit if unit else ''}"
        limit = sla.get(sla_key) if sla_key else None
        if limit is not None:
            text += f" {'>' if v > limit else '≤'} SLA {limit:,.0f} {unit}"
        lines.append(text)
    for key, v in sorted((tick.model_extra or {}).items()):
        if v is not None and not isinstance(v, (dict, list)):
            lines.append(f"{key.replace('_', ' ')}: {v:,.4g}" if _finite(v) else f"{key.replace('_', ' ')}: {v}")
    return "<br>".join([f"<b>{html.escape(lines[0])}</b>", *(html.escape(ln) for ln in lines[1:])])


# ---------------------------------------------------------------------------------------------- verdict
@dataclass
class Split:
    key: str  # within_ttft | within_itl | within_e2e | within_ttft_and_itl | missed_both
    label: str
    share: float


def verdict_split(report: RunReport) -> list[Split]:
    """Attainment decomposed: the share within each SLA given, within both TTFT and ITL, and missing both (every
    share over the same requests as attainment; rejected and unfinished requests meet none)."""
    sla = report.sla
    out: list[Split] = []
    for key, name, limit, share in (("within_ttft", "TTFT", sla.ttft_ms, sla.within_ttft),
                                    ("within_itl", "ITL", sla.itl_ms, sla.within_itl),
                                    ("within_e2e", "E2E", sla.e2e_ms, sla.within_e2e)):
        if limit is not None and share is not None:
            out.append(Split(key, f"within {name} ≤ {format_limit(limit)}", share))
    both = sla.within_ttft_and_itl
    if both is not None and sla.within_ttft is not None and sla.within_itl is not None:
        out.append(Split("within_ttft_and_itl", "within both TTFT and ITL", both))
        out.append(Split("missed_both", "missed both", max(0.0, 1.0 - sla.within_ttft - sla.within_itl + both)))
    return out


@dataclass
class GpuData:
    x: F64
    per_pool: dict[str, F64]  # GPUs provisioned per pool at each step
    cumulative_gpu_hours: F64
    total_gpu_hours: float | None  # the report's exact figure (cost.gpu_hours)


def gpu_data(report: RunReport) -> GpuData | None:
    """GPUs in use per pool (provisioned workers × GPUs per worker, at each interval's end) and the cumulative
    GPU-hours they add up to (a step integral over the intervals, so it ends close to, not exactly at,
    ``cost.gpu_hours``, which integrates the exact provisioning times)."""
    t, w = _bins(report)
    if t.size == 0:
        return None
    per: dict[str, F64] = {}
    for name in pool_names(report):
        g = _f64(report.timeseries.pools[name].gpus) if name in report.timeseries.pools else np.zeros(0)
        if g.size == t.size:
            per[name] = g
    if not per:
        return None
    exact = [_f64(report.timeseries.pools[n].gpu_seconds) for n in per]
    if all(e.size == t.size for e in exact):
        gsec = np.nansum(np.vstack(exact), axis=0)
    else:
        gsec = np.nansum(np.vstack(list(per.values())), axis=0) * w
    cum = np.concatenate([[0.0], np.cumsum(gsec) / 3600.0])
    x = np.append(t, t[-1] + w)
    return GpuData(x, {k: np.append(v, v[-1]) for k, v in per.items()}, cum, report.cost.gpu_hours)


def prefix_hit_data(report: RunReport) -> list[Line]:
    x, y, mode = _ts_step(report, "prefix_cache_hit_rate")
    if not _has(y):
        return []
    lines = [Line("per interval", x, y, "#31a354", width=1.5, mode=mode,
                  hover="hit rate %{y:.1%}<extra></extra>", series="prefix_cache_hit_rate")]
    overall = report.metrics.prefix_cache_hit_rate
    if overall is not None:
        lines.append(Line(f"whole run {PREFIX_HIT_RATE.format(overall)}", np.array([0.0, horizon_s(report)]),
                          np.array([overall, overall]), "#31a354", dash="dash", width=1.2))
    return lines


@dataclass
class Cdf:
    metric: str  # ttft_ms | itl_ms | request_latency_ms
    title: str
    values: F64  # latency (ms) at each percent
    percent: F64  # 0..100
    sla: float | None
    within_sla: float | None  # share of the attainment population within this SLA (the sla block's within_*)


CDF_TITLES = {"ttft_ms": "TTFT", "itl_ms": "ITL (per request)", "request_latency_ms": "Request latency (E2E)"}


def cdf_data(report: RunReport) -> list[Cdf]:
    """Latency CDFs from ``timeseries.cdf`` (101 quantiles of the measured requests), with the SLA and the share
    of requests within it as the metric definitions computed it (not read off the quantiles)."""
    cdf = report.timeseries.cdf
    if cdf is None:
        return []
    pct = _f64(cdf.percent)
    sla = sla_targets(report)
    within = {"ttft_ms": report.sla.within_ttft, "itl_ms": report.sla.within_itl,
              "e2e_ms": report.sla.within_e2e}
    out: list[Cdf] = []
    for key, sla_key in (("ttft_ms", "ttft_ms"), ("itl_ms", "itl_ms"), ("request_latency_ms", "e2e_ms")):
        v = _f64(cdf.values(key))
        if v.size == 0 or v.size != pct.size or not _has(v):
            continue
        out.append(Cdf(key, CDF_TITLES[key], v, pct, sla[sla_key], within[sla_key]))
    return out


# ---------------------------------------------------------------------------------------------- summary facts
@dataclass
class Verdict:
    status: str  # "met" | "missed" | "none"
    headline: str
    detail: str


def sla_text(report: RunReport) -> str:
    """``TTFT ≤ 2,500 ms and ITL ≤ 50 ms`` (empty without an SLA)."""
    short = {"ttft_ms": "TTFT", "itl_ms": "ITL", "e2e_ms": "E2E"}
    return " and ".join(f"{short[k]} ≤ {format_limit(v)}" for k, v in report.sla.limits().items())


def format_limit(ms: float) -> str:
    """An SLA limit as the user gave it: ``1,500 ms``, ``37.5 ms``."""
    return f"{ms:,g} ms"


def sla_verdict(report: RunReport) -> Verdict:
    """Was the SLA met? Yes when at least ``ATTAINMENT_GOAL`` of the requests met every SLA given."""
    sla = report.sla
    att = sla.attainment
    if not sla.given or att is None:
        pt = sla_targets(report)
        hint = ""
        if pt["ttft_ms"] is not None or pt["itl_ms"] is not None:
            hint = " The charts draw the planner's targets as SLA lines."
        return Verdict("none", "No SLA given",
                       "Pass --sla-ttft-ms / --sla-itl-ms / --sla-e2e-ms to measure attainment and goodput." + hint)
    req = report.requests
    total = sla.population if sla.population is not None else req.completed + req.rejected + req.unfinished
    count = f" ({sla.good_requests:,} of {total:,} requests)" if sla.good_requests is not None and total else ""
    met = att >= ATTAINMENT_GOAL
    a = attainment_data(report)
    per_interval = (f" {a.intervals_met} of {a.intervals} intervals met the goal."
                    if a is not None and a.intervals else "")
    shown = SLA_ATTAINMENT.format(att)
    headline = ("SLA met" if met else "SLA missed") + f": {shown} of requests within SLA"
    detail = (f"{shown}{count} met {sla_text(report)}; goal ≥ {ATTAINMENT_GOAL:.0%} of requests." + per_interval)
    return Verdict("met" if met else "missed", headline, detail)


def describe_engines(report: RunReport) -> str:
    """Hardware and perf model, per pool when they differ between pools; once when they are the same."""
    hw = report.config.hardware
    perf = report.config.perf_model

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


def describe_topology(report: RunReport) -> tuple[str, str]:
    """(``agg · 2 workers at start, peak 4 · router kv``, ``planner: sla target, constant predictor, ...``)."""
    cfg = report.config
    pools = report.pools
    pc = planner_config(report)
    parts: list[str] = []
    if topology(report) == "disagg":
        for name in ("prefill", "decode"):
            p = pools.get(name)
            start = p.workers_start if p is not None else cfg.get(f"num_{name}_workers")
            txt = f"{_count(start)} {name}"
            if p is not None and p.workers_peak != start:
                txt += f" (peak {p.workers_peak})"
            parts.append(txt)
        main = "disagg · " + " + ".join(parts)
    else:
        p = pools.get("agg")
        start = p.workers_start if p is not None else cfg.get("num_workers")
        main = f"agg · {_count(start)} worker{'s' if start != 1 else ''}"
        if p is not None and p.workers_peak != start:
            main += f" at start, peak {p.workers_peak}"
    if cfg.router:
        main += f" · router {cfg.router}"
    if pc:
        modes = [m for m, on in (("load", pc.get("enable_load_scaling")),
                                 ("throughput", pc.get("enable_throughput_scaling"))) if on]
        policy = report.planner.policy if report.planner is not None and report.planner.policy else None
        planner = (f"planner{f' {policy}' if policy else ''}: {pc.get('optimization_target', '?')} target, "
                   f"{pc.get('load_predictor', '?')} predictor" + (f", {' + '.join(modes)} scaling" if modes else ""))
    else:
        planner = "no planner (fixed workers)"
    return main, planner


def _count(v: Any) -> str:
    return f"{int(v):,}" if _finite(v) else "—"


# ---------------------------------------------------------------------------------------------- interval control
#: series the page's interval control redraws, and the per-interval weights that merge them (None: a rate)
INTERVAL_WEIGHTS: dict[str, str | None] = {
    "arrival_rps": None, "ttft_ms_avg": "latency_requests", "itl_ms_avg": "itl_requests", "isl_avg": "arrivals",
    "osl_avg": "arrivals", "prefix_cache_hit_rate": "prompt_tokens", "sla_attainment": "sla_population"}
INTERVAL_FACTORS = (1, 2, 3, 4, 5, 10, 15, 20, 30, 60)


def interval_data(report: RunReport) -> dict[str, Any] | None:
    """What the page's interval control needs: the base intervals, the series it redraws with their weights,
    and the choices (multiples of the report's interval, itself a multiple of the trace's arrival quantum)."""
    ts = report.timeseries
    n = len(ts.t_s)
    choices = [k for k in INTERVAL_FACTORS if n // k >= 4]
    if len(choices) < 2:
        return None
    series: dict[str, list[Any]] = {}
    weights: dict[str, str] = {}
    for key, wkey in INTERVAL_WEIGHTS.items():
        v = ts.series(key)
        if v is None or len(v) != n:
            continue
        series[key] = v
        w = ts.series(wkey) if wkey else None
        if wkey and w is not None and len(w) == n:
            series[wkey] = w
            weights[key] = wkey
    return {"t_s": ts.t_s, "bin_s": ts.bin_s, "series": series, "weights": weights, "goal": ATTAINMENT_GOAL,
            "good": GOOD_COLOUR, "bad": BAD_COLOUR, "choices": choices}
