"""A pool of identical workers (agg, or one side of disagg) and its provisioning history.

GPU-hours have one definition: the integral over time of *provisioned* workers (starting + active +
draining) times GPUs per worker, from the first arrival to the horizon. The pool logs every change of the
provisioned count so that integral is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmreplay.cluster.router import Router
from llmreplay.cluster.worker import State, Worker
from llmreplay.engine.config import EngineArgs
from llmreplay.engine.engine import Engine
from llmreplay.engine.fpm import FpmLog
from llmreplay.engine.perf.base import PerfModel
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.units import NS_PER_S

if TYPE_CHECKING:
    from llmreplay.cost.power import StepPower


@dataclass
class PoolSpec:
    """Everything needed to build this pool's workers."""

    name: str  # "agg", "prefill" or "decode"
    args: EngineArgs
    perf: PerfModel
    num_blocks: int
    gpus_per_worker: int
    unit_tokens: int
    kv_bytes_per_token: int = 0  # whole model, all TP ranks: what a disagg KV transfer moves per prompt token
    power: StepPower | None = None  # per-step energy (llmreplay.cost.power); None: no energy figures


@dataclass
class Pool:
    spec: PoolSpec
    router: Router
    icl: LogHistogram
    fast_forward: bool = True
    #: False: engines log only the FPM columns the report reads (no planner in the run: saves memory)
    fpm_planner_detail: bool = True
    #: engines snapshot their waiting queue at each step for the FPM (Dynamo's policy reads it; off: no cost)
    fpm_queue_snapshots: bool = False
    workers: list[Worker] = field(default_factory=list)
    #: (time_ns, provisioned workers after the change)
    provision_log: list[tuple[int, int]] = field(default_factory=list)
    #: (time_ns, active workers after the change)
    active_log: list[tuple[int, int]] = field(default_factory=list)
    _routable: list[Worker] | None = None
    #: workers per state, kept in step with every transition (the planner asks every tick)
    _counts: dict[State, int] = field(default_factory=lambda: dict.fromkeys(State, 0))

    @property
    def name(self) -> str:
        return self.spec.name

    def _new_worker(self, now: int, state: State) -> Worker:
        wid = len(self.workers)
        eng = Engine(wid, self.spec.args, self.spec.perf, self.spec.num_blocks, self.spec.unit_tokens,
                     self.icl, fast_forward=self.fast_forward, fpm_planner_detail=self.fpm_planner_detail)
        eng.power = self.spec.power
        eng.fpm_queue_snapshots = self.fpm_queue_snapshots
        w = Worker(wid, eng, self.spec.gpus_per_worker, self.name, now, state)
        self.workers.append(w)
        self._counts[state] += 1
        self._routable = None
        return w

    def drop_fpm_planner_detail(self) -> None:
        """No planner reads this pool's FPMs: its engines log only what the report reads (before any step)."""
        self.fpm_planner_detail = False
        for w in self.workers:
            assert not len(w.engine.fpm), "FPM detail dropped after the replay started"
            w.engine.fpm = FpmLog(w.engine.id, planner_detail=False)

    def add_workers(self, n: int, now: int) -> None:
        """Workers present from the start (already warm)."""
        for _ in range(n):
            self._new_worker(now, State.ACTIVE)
        self._log(now)

    def start_worker(self, now: int) -> Worker:
        """A planner scale-up: billed from now, routable once :meth:`activate` is called."""
        w = self._new_worker(now, State.STARTING)
        self._log(now)
        return w

    def activate(self, w: Worker, now: int) -> None:
        if w.state == State.STARTING:
            self._move(w, State.ACTIVE)
            self._log(now)

    def drain_worker(self, now: int, on_stopped: Callable[[Worker], None] | None = None) -> Worker | None:
        """A planner scale-down: the newest routable (or starting) worker stops taking requests."""
        for w in reversed(self.workers):
            if w.state in (State.STARTING, State.ACTIVE):
                self._move(w, State.DRAINING)
                self.maybe_stop(w, now)
                self._log(now)
                return w
        return None

    def maybe_stop(self, w: Worker, now: int) -> bool:
        if w.state == State.DRAINING and not w.engine.has_work and not w.engine.busy:
            self._move(w, State.STOPPED)
            w.stopped_ns = now
            self._log(now)
            return True
        return False

    @property
    def routable(self) -> list[Worker]:
        if self._routable is None:
            self._routable = [w for w in self.workers if w.state == State.ACTIVE]
        return self._routable

    def _move(self, w: Worker, state: State) -> None:
        self._counts[w.state] -= 1
        self._counts[state] += 1
        w.state = state
        self._routable = None

    def count(self, *states: State) -> int:
        return sum(self._counts[s] for s in states)

    def _log(self, now: int) -> None:
        prov = self.count(State.STARTING, State.ACTIVE, State.DRAINING)
        act = self.count(State.ACTIVE)
        if self.provision_log and self.provision_log[-1][0] == now:
            self.provision_log[-1] = (now, prov)
        else:
            self.provision_log.append((now, prov))
        if self.active_log and self.active_log[-1][0] == now:
            self.active_log[-1] = (now, act)
        else:
            self.active_log.append((now, act))

    def worker_seconds(self, horizon_ns: int) -> float:
        """Integral of provisioned workers over [0, horizon]."""
        total = 0
        log = self.provision_log
        for i, (t, n) in enumerate(log):
            if t >= horizon_ns:
                break
            t_next = log[i + 1][0] if i + 1 < len(log) else horizon_ns
            total += n * (min(t_next, horizon_ns) - max(t, 0))
        return total / NS_PER_S

    def gpu_hours(self, horizon_ns: int) -> float:
        return self.worker_seconds(horizon_ns) * self.spec.gpus_per_worker / 3600.0
