"""One time format for the whole report: elapsed simulated time as ``m:ss`` (``h:mm:ss`` from an hour), never
dates; axis ticks, hovers, the toolbar and the summary all use :func:`format_elapsed` (the page's script mirrors
it in JavaScript after a zoom)."""

from __future__ import annotations

import math

#: tick steps (s) of the elapsed-time axis, the same list as the page's script uses after a zoom
TIME_STEPS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900,
                1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000, 864000)
MAX_TIME_TICKS = 10


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


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """1-2-5 ticks over [lo, hi] (log axis), thinned to powers of ten when the range spans many decades."""
    lo, hi = max(lo, 1e-6), max(hi, lo * 1.0001)
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    span = math.log10(hi / lo)
    mults: tuple[int, ...] = (1, 2, 5) if span <= 2.2 else (1, 3) if span <= 3.6 else (1,)
    vals = [m * 10.0**d for d in decades for m in mults if lo * 0.89 <= m * 10.0**d <= hi * 1.26]
    return vals, [f"{v / 1000:g}k" if v >= 1000 else f"{v:g}" for v in vals]
