"""The hindsight schedule: with the whole trace known in advance, the cheapest per-interval fleet schedule
that meets the SLA goal within a change budget, as an oracle no online planner can beat by much.

Method (each step keeps what the previous one established):

1. *Ladder*: fleets of increasing size (agg: 1, 2, … workers; disagg: the goal-reaching fixed pair scaled
   down and up in proportion). Each rung is replayed as a fixed fleet; its per-interval attainment (by
   arrival) says how each interval would fare at that size.
2. *Estimate*: every interval starts on the smallest rung; the interval with the most good requests gained
   per GPU-hour moves up (possibly several rungs) until the estimated attainment reaches the goal.
3. *Start-up*: a scale-up is issued ``startup_time`` before its interval so the workers serve when needed;
   a dip shorter than the start-up time is filled (the workers would not be back in time).
4. *Budget*: while the schedule changes more often than the budget, the segment that is cheapest to raise to
   a neighbour's level is raised (capacity only grows, so the estimate still holds).
5. *Verify*: the schedule is replayed with ``policy: scripted``. Where the verified run misses the goal, the
   segments with the most failed requests per GPU-hour move up a rung and the schedule is verified again.

Only verified figures are reported, with ``met`` saying whether the goal was reached.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from llmreplay.baselines.fleet import Counts, FleetResult, FleetRunner, Schedule

#: verification replays at most (each adds capacity where the previous one missed)
MAX_VERIFICATIONS = 4
#: the estimate aims this far above the goal: the interval-by-interval estimate is optimistic (a fixed fleet
#: enters each interval with its own backlog, a schedule with a smaller fleet's)
ESTIMATE_MARGIN = 0.005


@dataclass
class Hindsight:
    schedule: Schedule
    result: FleetResult | None
    met: bool
    interval_s: float
    ladder: list[Counts]
    verifications: int
    change_budget: int

    def to_dict(self, runner: FleetRunner) -> dict[str, Any]:
        r = self.result
        return {
            "met": self.met,
            "attainment": None if r is None else r.attainment,
            "gpu_hours": None if r is None else r.gpu_hours,
            "replica_changes": None if r is None else r.replica_changes,
            "change_budget": self.change_budget,
            "interval_s": self.interval_s,
            "verifications": self.verifications,
            "peak": dict(zip(runner.components, [max(c[k] for _, c in self.schedule)
                                                  for k in range(len(runner.components))], strict=True)),
            "schedule": runner.schedule_rows(self.schedule),
        }


def ladder(runner: FleetRunner, top: Counts) -> list[Counts]:
    """Fleets from the smallest up to a little above ``top`` (the fixed fleet that reaches the goal)."""
    if not runner.disagg:
        return [(n,) for n in range(1, top[0] + 3)]
    k_top = max(top)
    rungs = [tuple(max(1, math.ceil(c * k / k_top)) for c in top) for k in range(1, k_top + 3)]
    return list(dict.fromkeys(rungs))


def build(runner: FleetRunner, goal: float, top: Counts, change_budget: int, interval_s: float,
          startup_s: float) -> Hindsight:
    rungs = ladder(runner, top)
    fixed = runner.fixed(rungs)
    width = _common_width(interval_s, [r.bin_s for r in fixed.values()])
    good = [_per_interval(fixed[f].good, fixed[f].bin_s, width) for f in rungs]
    sent = _per_interval(fixed[rungs[-1]].sent, fixed[rungs[-1]].bin_s, width)
    n = max(len(sent), *(len(g) for g in good))
    good = [g + [0] * (n - len(g)) for g in good]
    sent = sent + [0] * (n - len(sent))
    cost = [runner.gpus_of(f) for f in rungs]
    levels = _estimate(good, sent, cost, goal + ESTIMATE_MARGIN)
    levels = _fill_short_dips(levels, math.ceil(startup_s / width))
    levels = _fit_budget(levels, cost, change_budget, rungs)
    result: FleetResult | None = None
    verifications = 0
    for verifications in range(1, MAX_VERIFICATIONS + 1):
        schedule = _schedule(levels, rungs, width, startup_s)
        result = runner.scripted(schedule)
        if result.attainment >= goal:
            break
        if verifications == MAX_VERIFICATIONS:
            break
        raised = _raise_misses(levels, result, width, goal, cost, len(rungs))
        if not raised:
            break
        levels = _fit_budget(levels, cost, change_budget, rungs)
    assert result is not None
    return Hindsight(_schedule(levels, rungs, width, startup_s), result, result.attainment >= goal, width, rungs,
                     verifications, change_budget)


def _common_width(interval_s: float, bins: list[float]) -> float:
    """The whole number of every replay's report bins nearest ``interval_s`` (a multiple of their common
    multiple, not the least common multiple of the interval and the bins: 59 s over 5-s bins is 60 s, not
    295 s)."""
    unit = 1
    for b in bins:
        unit = math.lcm(unit, max(1, round(b)))
    return float(unit * max(1, round(interval_s / unit)))


def _per_interval(values: tuple[int, ...], bin_s: float, width: float) -> list[int]:
    k = max(1, round(width / bin_s))
    return [sum(values[i:i + k]) for i in range(0, len(values), k)]


def _estimate(good: list[list[int]], sent: list[int], cost: list[int], goal: float) -> list[int]:
    """Rung per interval: start at the bottom, then buy good requests where they are cheapest."""
    n = len(sent)
    levels = [0] * n
    need = goal * sum(sent)
    have = sum(good[0][i] for i in range(n))
    top = len(cost) - 1
    while have < need:
        best: tuple[float, int, int] | None = None
        for i in range(n):
            lv = levels[i]
            for up in range(lv + 1, top + 1):
                gain = good[up][i] - good[lv][i]
                ratio = gain / (cost[up] - cost[lv])
                if gain > 0 and (best is None or ratio > best[0]):
                    best = (ratio, i, up)
        if best is None:
            break  # the top rung everywhere still misses: the verification will say so
        _, i, up = best
        have += good[up][i] - good[levels[i]][i]
        levels[i] = up
    return levels


def _segments(levels: list[int]) -> list[tuple[int, int, int]]:
    """(start, end, level) runs of equal levels."""
    out: list[tuple[int, int, int]] = []
    start = 0
    for i in range(1, len(levels) + 1):
        if i == len(levels) or levels[i] != levels[start]:
            out.append((start, i, levels[start]))
            start = i
    return out


def _fill_short_dips(levels: list[int], min_len: int) -> list[int]:
    """A dip between higher neighbours shorter than the start-up time is filled: workers drained for it could
    not be back in time."""
    if min_len <= 0:
        return levels
    levels = list(levels)
    changed = True
    while changed:
        changed = False
        segs = _segments(levels)
        for k in range(1, len(segs) - 1):
            a, b, lv = segs[k]
            floor = min(segs[k - 1][2], segs[k + 1][2])
            if b - a < min_len and floor > lv:
                levels[a:b] = [floor] * (b - a)
                changed = True
                break
    return levels


def _changes(levels: list[int], rungs: list[Counts]) -> int:
    """Scaling events the schedule makes (a rung change moves each component whose count differs)."""
    return sum(sum(x != y for x, y in zip(rungs[a], rungs[b], strict=True))
               for a, b in itertools.pairwise(levels) if a != b)


def _fit_budget(levels: list[int], cost: list[int], budget: int, rungs: list[Counts]) -> list[int]:
    """Raise the cheapest segments to a neighbour's level until the schedule fits the change budget."""
    levels = list(levels)
    while _changes(levels, rungs) > max(0, budget):
        segs = _segments(levels)
        best: tuple[float, int, int] | None = None
        for k, (a, b, lv) in enumerate(segs):
            higher = [segs[j][2] for j in (k - 1, k + 1) if 0 <= j < len(segs) and segs[j][2] > lv]
            if not higher:
                continue
            to = min(higher)
            trial = levels[:a] + [to] * (b - a) + levels[b:]
            saved = _changes(levels, rungs) - _changes(trial, rungs)
            if saved <= 0:
                continue
            price = (cost[to] - cost[lv]) * (b - a) / saved
            if best is None or price < best[0]:
                best = (price, k, to)
        if best is None:
            break
        a, b, _ = segs[best[1]]
        levels[a:b] = [best[2]] * (b - a)
    return levels


def _raise_misses(levels: list[int], result: FleetResult, width: float, goal: float, cost: list[int],
                  n_rungs: int) -> bool:
    """Move up a rung the segments with the most failed requests per GPU-hour until they cover the deficit."""
    good = _per_interval(result.good, result.bin_s, width)
    sent = _per_interval(result.sent, result.bin_s, width)
    deficit = goal * sum(sent) - sum(good)
    candidates: list[tuple[float, int, int]] = []
    for a, b, lv in _segments(levels):
        if lv + 1 >= n_rungs:
            continue
        missed = sum(sent[i] - good[i] for i in range(a, min(b, len(sent))))
        if missed > 0:
            candidates.append((missed / ((cost[lv + 1] - cost[lv]) * (b - a)), a, b))
    covered = 0.0
    raised = False
    for _, a, b in sorted(candidates, reverse=True):
        if covered >= 2 * deficit:  # the misses of a raised segment are not all recovered: aim past the deficit
            break
        covered += sum(sent[i] - good[i] for i in range(a, min(b, len(sent))))
        levels[a:b] = [lv + 1 for lv in levels[a:b]]
        raised = True
    return raised


def _schedule(levels: list[int], rungs: list[Counts], width: float, startup_s: float) -> Schedule:
    """Rows at interval starts; a scale-up is issued ``startup_s`` early so its workers serve on time."""
    rows: list[tuple[float, Counts]] = [(0.0, rungs[levels[0]])]
    for i in range(1, len(levels)):
        if levels[i] == levels[i - 1]:
            continue
        t = i * width
        new = rungs[levels[i]]
        if levels[i] > levels[i - 1]:
            t = max(rows[-1][0] + 1e-3, t - startup_s)
        rows.append((round(t, 6), new))
    return tuple(rows)
