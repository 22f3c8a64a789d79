"""Reshape a loaded trace: take a time/count slice, speed it up, jitter quantised arrivals.

The runner applies them in this order: slice (in recorded trace time), speed-up, jitter. Each returns a new
:class:`Trace` whose first arrival is 0 and whose requests stay stably sorted by arrival.

Sessions. Turn k > 0 of a session keeps its recorded arrival (the replay releases it when turn k-1 finishes
plus ``delay_ns``). Slicing keeps a turn when its own recorded arrival lies in the window; when earlier turns
of its session fall outside, the first kept turn becomes the session's first turn (its delay is dropped and it
arrives at its recorded time). Jitter moves every turn of a session by the offset drawn for its first turn,
so turns never swap.
"""

from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt

from llmreplay.errors import InputError
from llmreplay.trace.model import I64, MAX_SPAN_NS, MAX_SPAN_S, NS_PER_S, Trace
from llmreplay.units import s_to_ns


def take_rows(trace: Trace, idx: npt.NDArray[np.integer]) -> Trace:
    """A new trace holding the requests at ``idx`` in that order (vectorised CSR gather); columns are copies.
    Arrival times are kept as they are (no re-normalisation)."""
    idx = np.asarray(idx, dtype=np.int64)
    starts = trace.hash_offsets[idx]
    lengths = trace.hash_offsets[idx + 1] - starts
    offsets = np.zeros(idx.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    if total:
        gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
        hash_ids = trace.hash_ids[gather]
    else:
        hash_ids = np.zeros(0, dtype=np.int64)
    return Trace(
        arrival_ns=trace.arrival_ns[idx],
        isl=trace.isl[idx],
        osl=trace.osl[idx],
        hash_offsets=offsets,
        hash_ids=hash_ids,
        session=trace.session[idx],
        delay_ns=trace.delay_ns[idx],
        line=trace.line[idx],
        block_size=trace.block_size,
        source=trace.source,
        format=trace.format,
        notes=list(trace.notes),
    )


def _first_turns(session: I64) -> npt.NDArray[np.bool_]:
    """True where a row is not a later turn of a session seen earlier in the array."""
    first = np.ones(session.shape[0], dtype=bool)
    mask = session >= 0
    if mask.any():
        rows = np.flatnonzero(mask)
        _, first_idx = np.unique(session[rows], return_index=True)
        first[rows] = False
        first[rows[first_idx]] = True
    return first


def dense_sessions(session: I64) -> I64:
    """Renumber session ids 0, 1, 2, ... in order of first appearance; -1 stays -1."""
    mask = session >= 0
    if not mask.any():
        return session.copy()
    vals = session[mask]
    uniq, first_idx, inverse = np.unique(vals, return_index=True, return_inverse=True)
    rank = np.empty(uniq.shape[0], dtype=np.int64)
    rank[np.argsort(first_idx, kind="stable")] = np.arange(uniq.shape[0], dtype=np.int64)
    out = session.copy()
    out[mask] = rank[inverse.reshape(-1)]
    return out


def _normalise(trace: Trace) -> Trace:
    if len(trace):
        trace.arrival_ns = trace.arrival_ns - trace.arrival_ns.min()
    return trace


def slice_trace(trace: Trace, start_s: float | None, duration_s: float | None,
                max_requests: int | None) -> Trace:
    """Keep the requests whose recorded arrival is in ``[first + start_s, first + start_s + duration_s)``,
    then the first ``max_requests`` of those; re-normalise arrivals so the first kept one is 0.

    ``start_s`` counts from the trace's first arrival, in trace time (before any speed-up). A session turn is
    kept when its own arrival is in the window; the first kept turn of a session becomes its first turn.
    """
    if start_s is not None and (not math.isfinite(start_s) or start_s < 0):
        raise InputError(f"--start must be a number of seconds >= 0, got {start_s}.")
    if duration_s is not None and (not math.isfinite(duration_s) or duration_s <= 0):
        raise InputError(f"--duration must be a number of seconds > 0, got {duration_s}.")
    if max_requests is not None and (isinstance(max_requests, bool) or int(max_requests) != max_requests
                                     or max_requests < 1):
        raise InputError(f"--max-requests must be a whole number >= 1, got {max_requests}.")
    n = len(trace)
    if n == 0:
        return take_rows(trace, np.zeros(0, dtype=np.int64))
    t0 = int(trace.arrival_ns.min())
    lo = min(t0 + (_to_ns(start_s) if start_s else 0), MAX_SPAN_NS)
    keep = trace.arrival_ns >= lo
    if duration_s is not None:
        keep &= trace.arrival_ns < min(lo + _to_ns(duration_s), MAX_SPAN_NS)
    idx = np.flatnonzero(keep)
    if max_requests is not None:
        idx = idx[: int(max_requests)]
    out = take_rows(trace, idx)
    first = _first_turns(out.session)
    out.delay_ns[first] = -1
    out.session = dense_sessions(out.session)
    parts = []
    if start_s:
        parts.append(f"start {start_s:g} s")
    if duration_s is not None:
        parts.append(f"duration {duration_s:g} s")
    if max_requests is not None:
        parts.append(f"max {int(max_requests):,} requests")
    out.notes.append(f"sliced ({', '.join(parts) or 'whole trace'}): kept {len(out):,} of {n:,} requests.")
    return _normalise(out)


def speed_up(trace: Trace, ratio: float) -> Trace:
    """Divide every arrival time and every session think time by ``ratio`` (> 0), rounding to whole ns."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) \
            or ratio <= 0:
        raise InputError(f"--arrival-speedup-ratio must be a number > 0, got {ratio!r}.")
    out = take_rows(trace, np.arange(len(trace), dtype=np.int64))
    if ratio == 1:
        return _normalise(out)
    span = float(out.arrival_ns.max() - out.arrival_ns.min()) if len(out) else 0.0
    longest = max(span, float(out.delay_ns.max()) if len(out) else 0.0) / ratio
    if not longest < MAX_SPAN_NS:
        raise InputError(f"--arrival-speedup-ratio {ratio:g} stretches the trace to {longest / NS_PER_S:.3g} s, "
                         f"more than the {MAX_SPAN_S:.3g} s (146 years) a trace can hold; use a larger ratio.")
    out.arrival_ns = np.rint(out.arrival_ns.astype(np.float64) / ratio).astype(np.int64)
    has = out.delay_ns >= 0
    out.delay_ns[has] = np.rint(out.delay_ns[has].astype(np.float64) / ratio).astype(np.int64)
    out.notes.append(f"arrivals and think times divided by {ratio:g} (--arrival-speedup-ratio).")
    return _normalise(out)


#: the widest arrival jitter: a year, far beyond any use, and with any trace's span still inside int64 ns
MAX_JITTER_S = 365 * 86_400.0
_JITTER_RE = re.compile(r"^\s*uniform\s*:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*s?\s*$")


def parse_jitter(spec: str) -> float:
    """``uniform:S`` -> S (seconds, >= 0). ``none``, ``off`` or an empty string -> 0 (no jitter)."""
    text = (spec or "").strip().lower()
    if text in ("", "none", "off", "0"):
        return 0.0
    m = _JITTER_RE.match(text)
    if m is None:
        raise InputError(f"--arrival-jitter '{spec}' is not understood; write uniform:S, e.g. uniform:3.0 "
                         "(spread each arrival uniformly over [t, t+S) seconds), or none.")
    s = float(m.group(1))
    if not (math.isfinite(s) and s <= MAX_JITTER_S):
        raise InputError(f"--arrival-jitter '{spec}': S must be a finite number of seconds <= {MAX_JITTER_S:g} "
                         "(a year).")
    return s


def _to_ns(seconds: float) -> int:
    """Seconds → int ns, saturating at :data:`MAX_SPAN_NS` (a window past any trace's end, not an overflow)."""
    return MAX_SPAN_NS if seconds >= MAX_SPAN_S else s_to_ns(seconds)


def jitter_arrivals(trace: Trace, spec: str, seed: int) -> Trace:
    """Move each arrival to a uniform random time in ``[t, t + S)`` (``spec`` = ``uniform:S``), with
    ``numpy.random.default_rng(seed)``; re-sort stably and re-normalise to 0.

    Later turns of a session move by the offset of the session's first turn, so turn order and recorded gaps
    are kept (their release still follows the previous turn's completion).
    """
    width_ns = s_to_ns(parse_jitter(spec))
    n = len(trace)
    if width_ns <= 0 or n == 0:
        return _normalise(take_rows(trace, np.arange(n, dtype=np.int64)))
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, width_ns, size=n, dtype=np.int64)
    session = trace.session
    mask = session >= 0
    if mask.any():
        rows = np.flatnonzero(mask)
        _, first_idx, inverse = np.unique(session[rows], return_index=True, return_inverse=True)
        offsets[rows] = offsets[rows[first_idx]][inverse.reshape(-1)]
    arrival = trace.arrival_ns + offsets
    order = np.argsort(arrival, kind="stable")
    out = take_rows(trace, order)
    out.arrival_ns = arrival[order]
    out.session = dense_sessions(out.session)
    out.notes.append(f"arrivals jittered uniformly over [t, t+{width_ns / NS_PER_S:g} s) with seed {seed} "
                     "(--arrival-jitter).")
    return _normalise(out)
