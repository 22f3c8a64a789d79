"""The best fixed fleet: fewest GPU-hours among fixed fleets whose SLA attainment reaches a target.

Attainment grows with the worker count (more workers, shorter queues), so for each target the smallest
reaching count is found by a monotone search: gallop up from a guess until a count reaches the target, then
bisect. Each round replays a batch of probes at once (as many as the executor runs in parallel). Disagg
searches the decode count for each prefill count (the decode need shrinks as prefill grows, so each search
starts from the previous answer) and keeps the cheapest pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmreplay.baselines.fleet import Counts, FleetResult, FleetRunner

#: give up on a target when this many workers of one component still miss it
MAX_WORKERS = 256


@dataclass(frozen=True)
class FixedFleet:
    counts: Counts
    result: FleetResult


@dataclass
class _Search:
    """Smallest last count of ``template`` reaching ``target``: ``lo`` misses, ``hi`` reaches (None: unknown)."""

    template: Counts
    target: float
    lo: int = 0
    hi: int | None = None
    lo_attainment: float = -1.0
    gave_up: bool = False

    def fleet(self, n: int) -> Counts:
        return (*self.template[:-1], n)

    @property
    def done(self) -> bool:
        return self.gave_up or (self.hi is not None and self.hi - self.lo <= 1)

    def probes(self, guess: int, batch: int) -> list[int]:
        if self.hi is None:  # gallop: the guess, then growing steps up
            if self.lo == 0:
                return [guess]
            step = max(1, self.lo // 2)
            return [min(MAX_WORKERS, self.lo + step * (k + 1)) for k in range(batch)]
        gap = self.hi - self.lo  # bisect the open interval with up to `batch` evenly spaced probes
        return sorted({self.lo + max(1, gap * (k + 1) // (batch + 1)) for k in range(batch)} - {self.hi})

    def learn(self, n: int, attainment: float) -> None:
        if n <= self.lo or (self.hi is not None and n >= self.hi):
            return
        if attainment >= self.target:
            self.hi = n
            return
        if self.hi is None and self.lo > 0 and attainment <= self.lo_attainment + 1e-9 and n >= 2 * self.lo:
            self.gave_up = True  # twice the workers, no better: the misses are not for want of workers
        self.lo, self.lo_attainment = n, attainment
        if self.hi is None and n >= MAX_WORKERS:
            self.gave_up = True


def smallest_reaching(runner: FleetRunner, targets: list[float], templates: list[Counts], guess: int,
                      batch: int) -> list[dict[Counts, int | None]]:
    """For every fleet template (its last count is searched) and every target: the smallest last count whose
    attainment reaches the target (None: none does). All searches advance together, one batch per round."""
    searches = [_Search(m, t) for t in targets for m in templates]
    while True:
        probes = list(dict.fromkeys(s.fleet(n) for s in searches if not s.done for n in s.probes(guess, batch)))
        if not probes:
            break
        for f, res in runner.fixed(probes).items():
            for s in searches:
                if f[:-1] == s.template[:-1]:
                    s.learn(f[-1], res.attainment)
    out: list[dict[Counts, int | None]] = [{} for _ in targets]
    for s in searches:
        out[targets.index(s.target)][s.template] = None if s.gave_up and s.hi is None else s.hi
    return out


def best_fixed(runner: FleetRunner, targets: list[float], guess: Counts, batch: int) -> list[FixedFleet | None]:
    """The cheapest fixed fleet reaching each target (None: no fleet up to :data:`MAX_WORKERS` reaches it)."""
    if not runner.disagg:
        found = smallest_reaching(runner, targets, [(0,)], max(1, guess[0]), batch)
        out: list[FixedFleet | None] = []
        for per in found:
            n = per[(0,)]
            out.append(None if n is None else FixedFleet((n,), runner.cache[(n,)]))
        return out
    # disagg: every prefill count from 1 to a bound; the decode count searched for each
    p_max = max(2, guess[0] + 1)
    while True:
        templates: list[Counts] = [(p, 0) for p in range(1, p_max + 1)]
        found = smallest_reaching(runner, targets, templates, max(1, guess[1]), batch)
        best: list[FixedFleet | None] = []
        for per in found:
            pairs = [(p, d) for (p, _), d in per.items() if d is not None]
            if not pairs:
                best.append(None)
                continue
            cheapest = min(pairs, key=lambda f: (runner.cache[f].gpu_hours, f))
            best.append(FixedFleet(cheapest, runner.cache[cheapest]))
        # the cheapest pair at the edge of the prefill range: more prefill might be cheaper still
        if all(b is None or b.counts[0] < p_max for b in best) or p_max >= MAX_WORKERS // 8:
            return best
        p_max *= 2
