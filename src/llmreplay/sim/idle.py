"""Planner ticks over idle stretches, collapsed so the cost of a run follows its events, not its length.

A planner ticks on a fixed grid. While the cluster is quiescent (no request in flight, no hand-off, no worker
starting or draining: nothing changes but the clock) a tick sees the same world each time; once the planner's
own state, measured relative to the clock, is back where it was one loop cycle before (``cycle_ticks``
ticks: e.g. 36 ticks of 5 s per 180 s throughput interval), every later tick of the stretch repeats that
cycle exactly, up to the next event (an arrival, a queued event, the horizon). The replay then evaluates
nothing more until that event: the planner stretches the cycle's recorded ticks over the skipped ones (each
entry gets ``count`` and ``every_s``) and shifts its clock-keyed state by the skipped span.

Exactness rests on the fingerprint: :meth:`Collapsible.idle_fingerprint` must cover everything a later tick
reads (windows, look-backs, predictor state, time since each loop last ran, event and warning counts) and
return None whenever it cannot vouch for that; then the ticks run one by one. Fingerprints are taken only while
the next event is more than a cycle away, so the cycle compared had no event in it either: equal fingerprints
a cycle apart then make the evolution periodic whatever ``cycle_ticks`` is (the hint only decides how soon a
cycle is found).
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

#: set to 1 to evaluate every planner tick one by one (the reference the collapsed run is checked against)
TICK_BY_TICK_ENV = "LLMREPLAY_TICK_BY_TICK"


class Collapsible(Protocol):
    """A periodic planner whose idle ticks the replay may collapse."""

    @property
    def cycle_ticks(self) -> int: ...

    def idle_fingerprint(self, now: int) -> Hashable | None:
        """Everything a later tick depends on, relative to ``now`` (just after the tick at ``now``); None:
        no proof of a fixed point (tick one by one)."""
        ...

    def collapse(self, cycles: int, cycle_ticks: int, period_ns: int) -> None:
        """The last ``cycle_ticks`` ticks repeat ``cycles`` more times: stretch their entries, shift the
        clock-keyed state by ``cycles * cycle_ticks * period_ns``."""
        ...


@dataclass
class IdleTicks:
    """Finds the repeating cycle of one periodic planner's idle ticks and skips it up to the next event."""

    target: Collapsible
    period_ns: int
    history: deque[tuple[int, Hashable]] = field(default_factory=deque)  # (tick time, fingerprint)
    skipped: int = 0  # ticks not evaluated (work counter)

    def next_tick(self, t: int, quiet_world: Callable[[], Hashable | None], next_event_ns: int) -> int:
        """The time of the next tick to evaluate after the tick at ``t``. ``quiet_world``: the cluster's state
        when it is quiescent (None: it is not); ``next_event_ns``: the first time anything else happens."""
        period = self.period_ns
        cycle = max(1, self.target.cycle_ticks)
        ahead = (next_event_ns - t - 1) // period  # grid ticks strictly before the next event
        # fewer than a cycle ahead: nothing can be skipped before the event (nor later in the stretch, as ahead
        # only shrinks), so a busy run with short gaps never pays for a fingerprint
        world = quiet_world() if ahead >= cycle else None
        mine = self.target.idle_fingerprint(t) if world is not None else None
        if mine is None:
            self.history.clear()
            return t + period
        if self.history and self.history[-1][0] != t - period:
            self.history.clear()
        self.history.append((t, (world, mine)))
        while len(self.history) > cycle + 1:
            self.history.popleft()
        if len(self.history) == cycle + 1 and self.history[0][1] == self.history[-1][1]:
            cycles = ahead // cycle
            self.target.collapse(cycles, cycle, period)
            self.history.clear()
            self.skipped += cycles * cycle
            return t + (cycles * cycle + 1) * period
        return t + period


def cycle_length(period: float, intervals: list[float], eps: float = 0.0) -> int:
    """Ticks of ``period`` after which every loop's schedule repeats: each loop runs every ``ceil(interval /
    period)`` ticks (``eps``: the tolerance of the ``>=`` test that schedules it); the lcm of those."""
    n = 1
    for interval in intervals:
        n = math.lcm(n, max(1, math.ceil(interval / period - eps)))
    return n


def plain(obj: Any, skip: frozenset[str] = frozenset()) -> Hashable:
    """A hashable, faithful image of ``obj``'s data (floats by their exact hex, arrays by their values),
    recursing into dataclasses and plain objects (minus attribute names in ``skip``)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj.hex()
    if isinstance(obj, np.ndarray):
        return ("ndarray", str(obj.dtype), obj.shape, plain(obj.tolist()))
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, dict):
        return ("dict", tuple((plain(k), plain(v)) for k, v in obj.items()))
    if isinstance(obj, deque):
        return ("deque", obj.maxlen, tuple(plain(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(plain(v) for v in obj))
    if isinstance(obj, (set, frozenset)):
        return ("set", tuple(sorted(repr(plain(v)) for v in obj)))
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        items = vars(obj)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    else:
        raise TypeError(f"no faithful image of a {type(obj).__name__}")
    return (type(obj).__name__, tuple((k, plain(v)) for k, v in items.items() if k not in skip))
