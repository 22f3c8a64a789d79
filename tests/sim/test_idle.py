"""The idle-tick collapser's rules, on a stand-in planner: it skips only whole repeating cycles, only before the
next event, and looks at nothing while the next event is less than a cycle away."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from llmreplay.sim.idle import IdleTicks, cycle_length, plain

S = 1_000_000_000


@dataclass
class Planner:
    """Its state repeats every ``cycle`` ticks once ``settle`` ticks have passed (``settle`` None: never)."""

    cycle: int = 3
    settle: int | None = 4
    ticks: int = 0
    fingerprints: int = 0
    collapsed: list[tuple[int, int]] = field(default_factory=list)

    @property
    def cycle_ticks(self) -> int:
        return self.cycle

    def idle_fingerprint(self, now: int) -> Hashable | None:
        self.fingerprints += 1
        if self.settle is None or self.ticks < self.settle:
            return ("warming", self.ticks)
        return ("phase", self.ticks % self.cycle)

    def collapse(self, cycles: int, cycle_ticks: int, period_ns: int) -> None:
        self.collapsed.append((cycles, cycle_ticks))
        self.ticks += cycles * cycle_ticks


def drive(planner: Planner, next_event_ns: int, period: int = 5 * S) -> list[int]:
    """Tick from ``period`` until the next event; the times evaluated."""
    idle = IdleTicks(planner, period)
    t, evaluated = period, []
    while t < next_event_ns:
        evaluated.append(t)
        planner.ticks += 1
        t = idle.next_tick(t, lambda: ("quiet",), next_event_ns)
    return evaluated


def test_whole_cycles_are_skipped_up_to_the_last_grid_tick_before_the_event() -> None:
    planner = Planner()
    event = 1000 * S + 1  # grid ticks at 5 s … 1000 s lie before it: 200
    evaluated = drive(planner, event)
    assert planner.ticks == 200  # every grid tick evaluated or stood for
    assert len(evaluated) < 15 and planner.collapsed
    cycles, cycle = planner.collapsed[0]
    assert cycle == 3 and len(evaluated) + cycles * cycle == 200 and evaluated[-1] <= 1000 * S
    # after the skip, ticks resume on the grid (multiples of the period)
    assert all(t % (5 * S) == 0 for t in evaluated)


def test_a_state_that_never_repeats_ticks_one_by_one() -> None:
    planner = Planner(settle=None)
    assert len(drive(planner, 500 * S + 1)) == 100 and not planner.collapsed


def test_nothing_is_fingerprinted_while_the_next_event_is_less_than_a_cycle_away() -> None:
    planner = Planner(cycle=36)
    evaluated = drive(planner, 30 * 5 * S)  # 29 grid ticks before the event: less than a cycle
    assert len(evaluated) == 29 and planner.fingerprints == 0


def test_a_busy_cluster_is_not_collapsed() -> None:
    planner = Planner()
    idle = IdleTicks(planner, 5 * S)
    t = 5 * S
    for _ in range(50):
        planner.ticks += 1
        t = idle.next_tick(t, lambda: None, 10_000 * S)
    assert t == 51 * 5 * S and not planner.collapsed


def test_cycle_length_is_the_lcm_of_each_loops_ticks() -> None:
    assert cycle_length(5.0, [5.0, 180.0]) == 36
    assert cycle_length(2.0, [5.0]) == 3  # a loop due at the first tick at least its interval on
    assert cycle_length(5.0, [10.0, 15.0]) == math.lcm(2, 3)


def test_plain_is_faithful() -> None:
    assert plain(0.0) != plain(-0.0)
    assert plain(float("nan")) == plain(float("nan"))  # NaN state is the same state
    assert plain(np.array([1.0, 2.0])) != plain(np.array([1.0, 2.5]))
    assert plain({"a": [1, 2.5]}) == plain({"a": [1, 2.5]})
    assert plain(Planner(ticks=1)) != plain(Planner(ticks=2))
