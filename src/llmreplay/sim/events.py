"""The event queue: SimPy's kernel in a few lines.

One heap of ``(time_ns, priority, sequence, kind, payload)``. The increasing sequence number makes ties
deterministic (first scheduled, first run); the priority orders different kinds of event at the same
instant: step ends free resources before arrivals are routed, and idle workers are kicked last so that all
requests arriving at one instant join the same step.
"""

from __future__ import annotations

import heapq
from enum import IntEnum
from typing import Any


class Kind(IntEnum):
    """Event kinds, in the order they run at the same instant."""

    STEP_END = 0  # a worker's step (or fast-forwarded stretch) ended
    TRANSFER_DONE = 1  # disagg: a request's KV arrived at its decode worker
    WORKER_READY = 2  # a started worker finished its startup time
    RELEASE = 3  # a request is released (session follow-up turn, closed-loop refill)
    TICK = 4  # planner tick
    KICK = 9  # an idle worker with work plans its next step


class EventQueue:
    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, int, Any]] = []
        self._seq = 0

    def push(self, t: int, kind: Kind, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, int(kind), self._seq, int(kind), payload))

    def peek_key(self) -> tuple[int, int] | None:
        if not self._heap:
            return None
        top = self._heap[0]
        return top[0], top[1]

    def next_time(self) -> int:
        """Time of the next event (a time after every event when there is none)."""
        return self._heap[0][0] if self._heap else 1 << 62

    def pop(self) -> tuple[int, int, Any]:
        t, _, _, kind, payload = heapq.heappop(self._heap)
        return t, kind, payload

    def __len__(self) -> int:
        return len(self._heap)
