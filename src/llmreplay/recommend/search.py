"""The replay-backed search: the cheapest deployment whose SLA attainment meets the goal, found with far fewer
replays than the space has deployments, and the same answer as replaying every one of them.

**Monotonicity.** Along a line of the space (one GPU, TP, weights, router and topology; one count varying) the
search assumes SLA attainment does not fall as workers are added: with round-robin routing every worker's
share of the stream thins as the pool grows, so queues, batch sizes and step times do not grow. In a disagg
group it assumes the same of prefill and of decode counts separately, so a pass at (p, d) implies a pass at
every (p' >= p, d' >= d) and a fail implies a fail below. It holds for round robin in every test we run
(``tests/recommend/test_monotone.py``); for the KV router (prefix affinity) and for planner-managed fleets it is
not guaranteed, so planner fleets are always replayed in full and every answer is confirmed on the whole trace.

**The search**, per stage (a *screen* on a representative window of the trace, then *confirm* on the whole
trace), in rounds whose replays run in parallel through the sweep executors:

1. binary search along each line for its first passing count (``O(log n)`` replays per line);
2. monotone inference: a result decides every deployment it dominates (no replay), across the lines of a
   disagg group too;
3. cost pruning: a deployment costing more per hour (then: more GPUs) than the best passing one found so far
   is never replayed, so whole lines drop out once a cheap winner is known;
4. the confirm stage starts from the screened minimum of each line: it replays that count and the one below on
   the whole trace (usually two replays settle the line) and the cheapest screened lines first, so pruning
   bites early. Only whole-trace results choose the winner; the screen only orders and seeds the search, so
   the answer equals an exhaustive whole-trace sweep whenever monotonicity holds (tested).

Resumable: with a cache folder every finished replay is stored by the hash of its run config, and a re-run
reads it back instead of replaying.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmreplay.config import build_run_config
from llmreplay.cost.prices import GpuPrice, price_of
from llmreplay.errors import InputError
from llmreplay.fileio import atomic_write
from llmreplay.recommend.space import Deployment, Line, SearchSpace, expand_lines
from llmreplay.sweep.executors import PointTask, Traces, make_executor, trace_key
from llmreplay.sweep.spec import canonical_json
from llmreplay.trace import load_trace
from llmreplay.trace.model import Trace

Stage = Literal["screen", "full"]
#: goal comparisons tolerate float noise in attainment = good / total
EPS = 1e-12


@dataclass(frozen=True)
class Evaluation:
    """One replay of one deployment on the screening window or the whole trace."""

    deployment: Deployment
    stage: Stage
    attainment: float | None
    meets: bool
    cost_per_hour: float
    report: dict[str, Any] | None
    error: str | None = None
    cached: bool = False
    wall_s: float = 0.0  # replay wall time (0 when read from the cache)

    @property
    def key(self) -> tuple[float, int, float]:
        """Rank among passing deployments: cheaper per hour, then fewer GPUs, then higher attainment."""
        return (round(self.cost_per_hour, 9), self.deployment.gpus, -(self.attainment or 0.0))


@dataclass
class SearchStats:
    space: int = 0
    lines: int = 0
    replays: dict[str, int] = field(default_factory=lambda: {"screen": 0, "full": 0})
    cached: int = 0
    #: deployments decided without a replay of their own in the confirm stage
    inferred: int = 0
    #: deployments never confirmed because something cheaper already passed
    pruned_by_cost: int = 0
    rounds: int = 0
    screen_window: tuple[float, float] | None = None


@dataclass
class SearchOutcome:
    winner: Evaluation | None
    evaluations: list[Evaluation]
    stats: SearchStats
    goal: float
    prices: dict[str, GpuPrice]
    run_values: Callable[[Deployment], dict[str, Any]]
    #: warnings for the user (e.g. monotonicity seen not to hold on the whole trace)
    notes: list[str] = field(default_factory=list)

    @property
    def confirmed(self) -> list[Evaluation]:
        return [e for e in self.evaluations if e.stage == "full"]


OnResult = Callable[[Evaluation], None]
OnRound = Callable[[Stage, int], None]


class _Knowledge:
    """Pass/fail results of one stage per group, and what they imply by monotonicity."""

    def __init__(self) -> None:
        self.passes: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
        self.fails: dict[tuple[Any, ...], list[tuple[int, int]]] = {}

    def add(self, group: tuple[Any, ...], row: int, idx: int, ok: bool) -> None:
        (self.passes if ok else self.fails).setdefault(group, []).append((row, idx))

    def status(self, group: tuple[Any, ...], row: int, idx: int) -> bool | None:
        if any(r <= row and i <= idx for r, i in self.passes.get(group, ())):
            return True
        if any(r >= row and i >= idx for r, i in self.fails.get(group, ())):
            return False
        return None

    def violations(self) -> list[tuple[tuple[Any, ...], tuple[int, int], tuple[int, int]]]:
        """Direct results that contradict monotonicity: a pass at a point no larger than a failing one."""
        out = []
        for group, passes in self.passes.items():
            for p in passes:
                for f in self.fails.get(group, ()):
                    if p[0] <= f[0] and p[1] <= f[1]:
                        out.append((group, p, f))
        return out

    def observed(self, group: tuple[Any, ...], row: int, idx: int) -> bool:
        return (row, idx) in self.passes.get(group, ()) or (row, idx) in self.fails.get(group, ())


def _line_minimum(line: Line, k: _Knowledge) -> int | None:
    """Index of the line's first passing deployment, once the knowledge decides it."""
    st = [k.status(line.group, line.row, i) for i in range(len(line.points))]
    return next((i for i, s in enumerate(st) if s), None)


def _probes(line: Line, k: _Knowledge, cap: int, guess: int | None, stage: Stage) -> list[int]:
    """Indices of ``line`` to replay next (empty: the line is settled up to index ``cap``)."""
    n = len(line.points)
    st = [k.status(line.group, line.row, i) for i in range(n)]
    lo = next((i for i, s in enumerate(st) if s is not False), n)
    hi_pass = next((i for i, s in enumerate(st) if s), None)
    top = min(hi_pass if hi_pass is not None else n - 1, cap)
    if lo > top or (hi_pass is not None and lo >= hi_pass):
        return []
    last_unknown = top if st[top] is None else top - 1  # st[top] True: the search is for the first pass below
    if lo > last_unknown:
        return []
    if stage == "full":
        if guess is not None and lo <= guess <= last_unknown:
            return [guess] + ([guess - 1] if guess - 1 >= lo else [])
        if guess is None and st[top] is None:
            return [top]  # decisive: a fail here drops the whole line
    return [(lo + last_unknown) // 2]


def screen_window(trace: Trace, screen_s: float | None) -> tuple[float, float] | None:
    """The ``screen_s``-second window whose input-token rate is closest to the whole trace's (windows start
    every quarter window), or None when the trace is too short for a screen to save anything."""
    if not screen_s:
        return None
    arr = trace.arrival_ns.astype(np.float64) / 1e9
    span = float(arr[-1] - arr[0]) if len(arr) else 0.0
    if span < 2 * screen_s:
        return None
    tokens = trace.isl.astype(np.float64)
    mean_rate = tokens.sum() / span
    best: tuple[float, float] | None = None
    best_gap = np.inf
    for start in np.arange(0.0, span - screen_s + 1e-9, screen_s / 4):
        lo, hi = np.searchsorted(arr - arr[0], [start, start + screen_s])
        gap = abs(tokens[lo:hi].sum() / screen_s - mean_rate)
        if gap < best_gap:
            best, best_gap = (float(start), float(screen_s)), gap
    return best


class _Replayer:
    """Runs batches of (deployment, stage) through a sweep executor; reads and writes the resume cache."""

    def __init__(self, executor: str, jobs: int, traces: Traces, cache: Path | None,
                 values: Callable[[Deployment, Stage], dict[str, Any]], judge: Callable[..., Evaluation],
                 on_result: OnResult | None, stats: SearchStats) -> None:
        self.run_points = make_executor(executor, jobs)
        self.traces, self.cache, self.values, self.judge = traces, cache, values, judge
        self.on_result, self.stats = on_result, stats

    def run(self, batch: list[tuple[Deployment, Stage]]) -> list[Evaluation]:
        out: dict[int, Evaluation] = {}
        tasks: list[PointTask] = []
        for i, (dep, stage) in enumerate(batch):
            values = self.values(dep, stage)
            h = hashlib.sha256(canonical_json(values).encode()).hexdigest()[:16]
            cached = self._cached(h)
            if cached is not None:
                out[i] = self.judge(dep, stage, cached, None, cached=True)
                self.stats.cached += 1
                self._report(out[i])
                continue
            tasks.append(PointTask(i, h, build_run_config(values, source=f"recommend: {dep.label()}")))
        with closing(self.run_points(tasks, self.traces)) as results:
            for res in results:
                dep, stage = batch[res.index]
                report = json.loads(res.report_json) if res.report_json is not None else None
                if report is not None and self.cache is not None:
                    atomic_write(self.cache / f"{res.id}.json", res.report_json or "", "recommend cache")
                out[res.index] = replace(self.judge(dep, stage, report, res.error), wall_s=res.wall_s)
                self.stats.replays[stage] += 1
                self._report(out[res.index])
        return [out[i] for i in range(len(batch))]

    def _cached(self, h: str) -> dict[str, Any] | None:
        if self.cache is None:
            return None
        p = self.cache / f"{h}.json"
        if not p.is_file():
            return None
        try:
            report: dict[str, Any] = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # a damaged entry is replayed, not trusted
        return report

    def _report(self, ev: Evaluation) -> None:
        if self.on_result is not None:
            self.on_result(ev)


def recommend(trace_path: str, *, sla_ttft_ms: float, sla_itl_ms: float, engine_args: dict[str, Any],
              space: SearchSpace, prices: dict[str, GpuPrice], goal: float = 0.9, executor: str = "local",
              jobs: int = 1, cache_dir: Path | None = None, on_result: OnResult | None = None,
              on_round: OnRound | None = None, seed: int = 0) -> SearchOutcome:
    """Search ``space`` for the cheapest deployment meeting ``goal`` on the trace at ``trace_path``."""
    if not 0 < goal <= 1:
        raise InputError(f"--goal must be in (0, 1] (got {goal}).")
    path = str(Path(trace_path).resolve())
    common = {"trace": path, "sla_ttft_ms": sla_ttft_ms, "sla_itl_ms": sla_itl_ms, "seed": seed}
    cfg0 = build_run_config({"trace": path})
    trace = load_trace(*trace_key(cfg0))
    traces: Traces = {trace_key(cfg0): trace}
    default_router = "kv" if trace.has_hashes else "round_robin"
    lines = expand_lines(space, engine_args, default_router, (sla_ttft_ms, sla_itl_ms))
    for line in lines:
        for dep in line.points:
            price_of(prices, dep.gpu)  # every GPU of the space has a price before anything runs
    stats = SearchStats(space=sum(len(line.points) for line in lines), lines=len(lines))
    window = screen_window(trace, space.screen_s)
    stats.screen_window = window

    def values(dep: Deployment, stage: Stage) -> dict[str, Any]:
        v = dep.run_values(engine_args, common)
        if stage == "screen":
            assert window is not None
            v.update(start=window[0], duration=window[1])
        return v

    def judge(dep: Deployment, stage: Stage, report: dict[str, Any] | None, error: str | None,
              cached: bool = False) -> Evaluation:
        if report is None:
            return Evaluation(dep, stage, None, False, dep.cost_per_hour(prices), None, error, cached)
        att = report["sla"]["attainment"]
        cost_h = dep.cost_per_hour(prices)
        if dep.planner is not None:  # the planner's fleet varies: its average cost per hour
            hours = report["sim"]["simulated_s"] / 3600
            cost_h = report["cost"]["gpu_hours"] * price_of(prices, dep.gpu).usd_per_hour / hours if hours else 0.0
        return Evaluation(dep, stage, att, att is not None and att >= goal - EPS, cost_h, report, None, cached)

    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    started_ray = _start_ray(executor, jobs)
    try:
        replayer = _Replayer(executor, jobs, traces, cache_dir, values, judge, on_result, stats)
        evaluations: list[Evaluation] = []
        guesses: dict[int, int | None] = {}
        order = list(range(len(lines)))
        if window is not None:
            screened = _search("screen", lines, replayer, evaluations, {}, order, jobs, on_round, stats, prices)
            guesses = {i: _line_minimum(line, screened) for i, line in enumerate(lines)}
            order = _cheapest_first(lines, guesses, prices)
        full = _search("full", lines, replayer, evaluations, guesses, order, jobs, on_round, stats, prices)
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    confirmed = [e for e in evaluations if e.stage == "full"]
    passing = [e for e in confirmed if e.meets]
    winner = min(passing, key=lambda e: e.key) if passing else None
    seen = {(e.deployment, e.stage) for e in confirmed}
    stats.inferred = sum(1 for line in lines for i, d in enumerate(line.points)
                         if (d, "full") not in seen and full.status(line.group, line.row, i) is not None)
    stats.pruned_by_cost = stats.space - len(seen) - stats.inferred
    notes = [f"monotonicity did not hold on the whole trace for {group[0]} {group[2]} TP{group[1]} {group[4]} "
             f"({group[3]}): a smaller fleet passed where a larger one failed; deployments decided by inference in "
             "this group may be wrong, so the answer may not be the cheapest (use the round_robin router, or a "
             "space without this group, to check)" for group in sorted({v[0] for v in full.violations()}, key=str)]
    return SearchOutcome(winner, evaluations, stats, goal, prices, lambda d: d.run_values(engine_args, common),
                         notes)


def _cheapest_first(lines: list[Line], guesses: dict[int, int | None], prices: dict[str, GpuPrice]) -> list[int]:
    """Lines ordered by the cost of their screened minimum (unscreened or infeasible ones last)."""
    def key(i: int) -> tuple[int, float, int]:
        g = guesses.get(i)
        if g is None:
            return (1, 0.0, i)
        return (0, lines[i].points[g].cost_per_hour(prices), i)
    return sorted(range(len(lines)), key=key)


def _search(stage: Stage, lines: list[Line], replayer: _Replayer, evaluations: list[Evaluation],
            guesses: dict[int, int | None], order: list[int], jobs: int, on_round: OnRound | None,
            stats: SearchStats, prices: dict[str, GpuPrice]) -> _Knowledge:
    """Rounds of probes until every line is settled under the cost cap; returns what the stage learnt."""
    k = _Knowledge()
    best: Evaluation | None = None
    first = True
    while True:
        batch: list[tuple[Deployment, Stage]] = []
        where: list[tuple[Line, int]] = []
        active = order[:max(jobs, 1)] if (first and stage == "full" and guesses) else order
        for li in active:
            line = lines[li]
            if line.points[0].planner is not None:  # planner fleets: no monotone structure, no cost bound
                if stage == "full" and not k.observed(line.group, line.row, 0):
                    batch.append((line.points[0], stage))
                    where.append((line, 0))
                continue
            cap = _cap(line, best, prices)
            for idx in _probes(line, k, cap, guesses.get(li), stage):
                if (line.points[idx], stage) not in batch:
                    batch.append((line.points[idx], stage))
                    where.append((line, idx))
        if not batch:
            if first and active is not order:
                first = False
                continue
            return k
        first = False
        stats.rounds += 1
        if on_round is not None:
            on_round(stage, len(batch))
        for (line, idx), ev in zip(where, replayer.run(batch), strict=True):
            evaluations.append(ev)
            k.add(line.group, line.row, idx, ev.meets)
            if ev.meets and (best is None or ev.key < best.key):
                best = ev


def _cap(line: Line, best: Evaluation | None, prices: dict[str, GpuPrice]) -> int:
    """The last index of ``line`` not dominated on cost by ``best``: cheaper per hour, or as cheap with no more
    GPUs (equal cost and GPUs still compete on attainment)."""
    if best is None:
        return len(line.points) - 1
    bound = (round(best.cost_per_hour, 9), best.deployment.gpus)
    cap = -1
    for i, d in enumerate(line.points):
        if (round(d.cost_per_hour(prices), 9), d.gpus) <= bound:
            cap = i
    return cap


def _start_ray(executor: str, jobs: int) -> bool:
    """One local Ray instance for all rounds (the executor would start and stop one per round)."""
    if executor != "ray":
        return False
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray, an optional extra: pip install 'llmreplay[ray]'.") from None
    if ray.is_initialized():
        return False
    ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    return True
