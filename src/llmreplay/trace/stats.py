"""What a trace looks like: size, rate, ISL/OSL percentiles, burstiness, prefix reuse, sessions.

Definitions (the same as in the shared traces README, so its figures can be checked):

- span: first arrival to last; mean rate = (requests - 1) / span.
- percentiles: numpy's default (linear interpolation).
- inter-arrival CV: population standard deviation of the gaps between consecutive arrivals / their mean.
- seconds and minutes are bins counted from the first arrival (bin k holds [k, k+1) seconds or minutes);
  the last bin is the one holding the last arrival, so a 3,537 s trace has 59 minutes.
- prefix reuse: requests taken in file order, an unbounded cache; a block reference counts as reused when it
  belongs to the leading run of blocks in the request's ``hash_ids`` that earlier requests already referenced.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmreplay.trace.model import I64, NS_PER_S, Trace


def _dist(v: I64) -> dict[str, float]:
    if v.shape[0] == 0:
        return {"mean": 0.0, "min": 0.0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {
        "mean": float(v.mean()),
        "min": float(v.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(v.max()),
    }


def prefix_reuse(trace: Trace) -> dict[str, Any]:
    """Block references, distinct blocks and the share of references in the leading already-seen run."""
    refs = int(trace.hash_ids.shape[0])
    if refs == 0:
        return {"block_refs": 0, "distinct_blocks": 0, "reused_refs": 0, "reused_share": None}
    order = np.argsort(trace.line, kind="stable")  # file order
    lengths = np.diff(trace.hash_offsets)[order]
    starts_src = trace.hash_offsets[:-1][order]
    offsets = np.zeros(order.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    gather = np.repeat(starts_src - offsets[:-1], lengths) + np.arange(refs, dtype=np.int64)
    ids = trace.hash_ids[gather]
    req = np.repeat(np.arange(order.shape[0], dtype=np.int64), lengths)
    uniq, first_pos, inverse = np.unique(ids, return_index=True, return_inverse=True)
    seen = req[first_pos][inverse.reshape(-1)] < req  # referenced by an earlier request
    not_seen = np.flatnonzero(~seen)
    starts, ends = offsets[:-1], offsets[1:]
    k = np.searchsorted(not_seen, starts)
    first_new = np.where(k < not_seen.shape[0], not_seen[np.minimum(k, not_seen.shape[0] - 1)], refs)
    run = np.minimum(first_new, ends) - starts
    reused = int(run.sum())
    return {
        "block_refs": refs,
        "distinct_blocks": int(uniq.shape[0]),
        "reused_refs": reused,
        "reused_share": reused / refs,
    }


def trace_stats(trace: Trace) -> dict[str, Any]:
    """A JSON-ready summary of ``trace`` (see the module docstring for the definitions)."""
    n = len(trace)
    arr = trace.arrival_ns
    span_ns = int(arr.max() - arr.min()) if n else 0
    span_s = span_ns / NS_PER_S
    rel = (arr - arr.min()) if n else arr
    gaps = np.diff(arr).astype(np.float64) / NS_PER_S
    cv: float | None = None
    if gaps.shape[0] >= 2 and gaps.mean() > 0:
        cv = float(gaps.std() / gaps.mean())
    per_s: npt.NDArray[np.int64] = np.bincount(rel // NS_PER_S) if n else np.zeros(0, dtype=np.int64)
    per_min: npt.NDArray[np.int64] = np.bincount(rel // (60 * NS_PER_S)) if n else np.zeros(0, dtype=np.int64)
    sessions = trace.session[trace.session >= 0]
    n_sessions = int(np.unique(sessions).shape[0]) if sessions.shape[0] else 0
    distinct = int(np.unique(arr).shape[0]) if n else 0
    step_s: float | None = None
    if 1 < distinct <= n // 3:  # quantised timestamps: report the typical step between distinct values
        step_s = float(np.median(np.diff(np.unique(arr)))) / NS_PER_S
    return {
        "source": trace.source,
        "format": trace.format,
        "requests": n,
        "span_s": span_s,
        "mean_rate_rps": (n - 1) / span_s if span_s > 0 else None,
        "isl": _dist(trace.isl),
        "osl": _dist(trace.osl),
        "interarrival_cv": cv,
        "max_gap_s": float(gaps.max()) if gaps.shape[0] else 0.0,
        "max_requests_in_one_second": int(per_s.max()) if n else 0,
        "busiest_minute_requests": int(per_min.max()) if n else 0,
        "busiest_minute_rps": float(per_min.max()) / 60 if n else 0.0,
        "minutes": int(per_min.shape[0]),
        "minutes_without_requests": int((per_min == 0).sum()),
        "distinct_arrival_times": distinct,
        "timestamp_step_s": step_s,
        "block_size": trace.block_size,
        "prefix": prefix_reuse(trace),
        "sessions": n_sessions,
        "session_turns_mean": (float(sessions.shape[0]) / n_sessions) if n_sessions else None,
        "notes": list(trace.notes),
    }


def render_trace_stats(stats: dict[str, Any], console: Console) -> None:
    """Print ``stats`` (from :func:`trace_stats`) as a rich table."""
    table = Table(title=escape(f"trace {stats['source']} ({stats['format']})"), show_header=True,
                  header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    n = stats["requests"]
    table.add_row("requests", f"{n:,}")
    span = stats["span_s"]
    table.add_row("span", f"{span:,.1f} s ({span / 60:,.1f} min)")
    rate = stats["mean_rate_rps"]
    table.add_row("mean rate", "-" if rate is None else f"{rate:,.2f} req/s")
    for key, label in (("isl", "input tokens"), ("osl", "output tokens")):
        d = stats[key]
        table.add_row(f"{label} mean / p50 / p90 / p99 / max",
                      " / ".join(f"{d[k]:,.0f}" for k in ("mean", "p50", "p90", "p99", "max")))
    cv = stats["interarrival_cv"]
    table.add_row("inter-arrival CV", "-" if cv is None else f"{cv:.2f}")
    table.add_row("longest gap", f"{stats['max_gap_s']:,.1f} s")
    table.add_row("most requests in one second", f"{stats['max_requests_in_one_second']:,}")
    table.add_row("busiest minute",
                  f"{stats['busiest_minute_rps']:.2f} req/s ({stats['busiest_minute_requests']:,} requests)")
    table.add_row("minutes with no request", f"{stats['minutes_without_requests']} of {stats['minutes']}")
    step = stats["timestamp_step_s"]
    if step is not None:
        table.add_row("distinct arrival times",
                      f"{stats['distinct_arrival_times']:,} (about {step:g} s apart; "
                      f"try --arrival-jitter uniform:{step:.1f})")
    pre = stats["prefix"]
    if pre["block_refs"]:
        table.add_row(f"prefix blocks ({stats['block_size']} tokens)",
                      f"{pre['block_refs']:,} refs, {pre['distinct_blocks']:,} distinct, "
                      f"{100 * pre['reused_share']:.1f} % reused")
    else:
        table.add_row("prefix blocks", "none (no hash_ids)")
    if stats["sessions"]:
        table.add_row("sessions", f"{stats['sessions']:,} ({stats['session_turns_mean']:.1f} turns each)")
    console.print(table)
    for note in stats.get("notes", []):
        console.print(f"note: {note}", highlight=False, markup=False)
