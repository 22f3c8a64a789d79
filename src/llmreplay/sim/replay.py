"""The replay driver: releases the trace's requests on the simulated clock, routes them to workers, runs
the workers' steps as events, and records what happened to every request.

Where a request is born, scheduled, timed, finished and counted:

* born: :meth:`Replay._release` (open loop: at its trace arrival; session turn k>0: when turn k-1 ends plus
  its delay; closed loop: when a slot frees up);
* rejected up front if it can never fit (:meth:`Replay._reject_reason`), else routed to a worker
  (:mod:`llmreplay.cluster.router`) and queued in its engine;
* scheduled and timed by the engine (:mod:`llmreplay.engine.engine`), whose step ends are events here;
* finished and counted in :class:`~llmreplay.metrics.records.RequestRecords`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from llmreplay.cluster.pool import Pool
from llmreplay.cluster.worker import State, Worker
from llmreplay.engine.request import Request
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.metrics.records import RequestRecords, Status
from llmreplay.sim.events import EventQueue, Kind
from llmreplay.trace.model import Trace

#: a hook the planner (or a sampler) registers: called at its own period with (replay, now_ns)
Periodic = Callable[["Replay", int], None]


class Observer(Protocol):
    """What a frontend-side observer (the planner) hears about requests."""

    def arrived(self, isl: int, osl: int) -> None: ...

    def finished(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int) -> None: ...


@dataclass
class ReplayOptions:
    seed: int = 0
    horizon_ns: int | None = None  # --max-sim-time-seconds
    concurrency: int | None = None  # --replay-concurrency (closed loop)
    fast_forward: bool = True  # False: the step-by-step reference mode (tests)
    progress: Callable[[int, int], None] | None = None  # (sim time ns, requests finished)


@dataclass
class ReplayResult:
    records: RequestRecords
    pools: dict[str, Pool]
    icl: LogHistogram
    horizon_ns: int  # last completion, or the --max-sim-time-seconds cut
    last_completion_ns: int
    events: int
    steps: int
    wall_s: float
    extras: dict[str, Any] = field(default_factory=dict)


class Replay:
    """One simulation run of an agg pool (disagg adds a second pool in its own driver)."""

    def __init__(self, trace: Trace, pool: Pool, options: ReplayOptions) -> None:
        self.trace = trace
        self.pool = pool
        self.options = options
        self.q = EventQueue()
        self.now = 0
        n = len(trace)
        self.records = RequestRecords.empty(trace.isl.copy(), trace.osl.copy(), trace.arrival_ns, trace.line)
        self._keys = trace.prefix_keys().tolist() if trace.has_hashes else []
        self._offsets = trace.hash_offsets.tolist()
        self._isl = trace.isl.tolist()
        self._osl = trace.osl.tolist()
        self._arrival = trace.arrival_ns.tolist()
        self._delay = trace.delay_ns.tolist()
        # sessions: turn k+1 of a session is released after turn k ends
        self._next_turn = [-1] * n
        first_turn = np.ones(n, dtype=bool)
        if trace.has_sessions:
            last_of: dict[int, int] = {}
            for i, s in enumerate(trace.session.tolist()):
                if s < 0:
                    continue
                if s in last_of:
                    self._next_turn[last_of[s]] = i
                    first_turn[i] = False
                last_of[s] = i
        self._first_turns = np.nonzero(first_turn)[0].tolist()
        self._periodic: list[tuple[int, Periodic]] = []
        self.finished_count = 0
        self.ended_count = 0  # completed + rejected
        self.last_completion_ns = 0
        self._in_flight = 0
        self._ready: deque[int] = deque()
        self._sync_before_route = getattr(pool.router, "name", "") == "kv"
        self.observer: Observer | None = None
        self._frontend: deque[int] = deque()  # requests waiting for any worker to be routable

    # ----------------------------------------------------------------- hooks
    def every(self, period_ns: int, fn: Periodic, first_ns: int | None = None) -> None:
        """Call ``fn(replay, now)`` every ``period_ns`` of simulated time (planner ticks, samplers)."""
        self._periodic.append((period_ns, fn))
        self.q.push(first_ns if first_ns is not None else period_ns, Kind.TICK, len(self._periodic) - 1)

    # ----------------------------------------------------------------- main loop
    def run(self) -> ReplayResult:
        wall0 = time.perf_counter()
        opts = self.options
        horizon = opts.horizon_ns
        q = self.q
        arrivals = self._first_turns
        n_arr = len(arrivals)
        ai = 0
        closed = opts.concurrency is not None
        if closed:
            self._ready.extend(arrivals)
            n_arr = 0
            self._fill_closed_loop(0)
        arrival_t = self._arrival
        progress = opts.progress
        next_progress = 0
        n_events = 0
        while True:
            key = q.peek_key()
            if ai < n_arr:
                ta = arrival_t[arrivals[ai]]
                if key is None or (ta, Kind.RELEASE) < key:
                    if horizon is not None and ta > horizon:
                        break
                    self.now = ta
                    self._dispatch(arrivals[ai], ta)
                    ai += 1
                    n_events += 1
                    continue
            if key is None:
                break
            if horizon is not None and key[0] > horizon:
                break
            t, kind, payload = q.pop()
            self.now = t
            n_events += 1
            if kind == Kind.STEP_END:
                w, version = payload
                if version == w.version:
                    self._on_step_end(w, t)
            elif kind == Kind.KICK:
                self._on_kick(payload, t)
            elif kind == Kind.RELEASE:
                self._on_release(payload, t)
            elif kind == Kind.TICK:
                period, fn = self._periodic[payload]
                fn(self, t)
                if self._work_left():
                    q.push(t + period, Kind.TICK, payload)
            elif kind == Kind.WORKER_READY:
                self.pool.activate(payload, t)
                while self._frontend and self.pool.routable:
                    self._route(self._frontend.popleft(), t)
            if progress is not None and t >= next_progress:
                progress(t, self.finished_count)
                next_progress = t + 1_000_000_000
        end = self.now if horizon is None else horizon
        if horizon is not None:
            for w in self.pool.workers:
                w.engine.sync(horizon)
        still = self.records.status == Status.PENDING
        self.records.status[still] = Status.UNFINISHED
        h = self.last_completion_ns if horizon is None else horizon
        if progress is not None:
            progress(end, self.finished_count)
        return ReplayResult(
            records=self.records, pools={self.pool.name: self.pool}, icl=self.pool.icl, horizon_ns=h,
            last_completion_ns=self.last_completion_ns, events=n_events,
            steps=sum(w.engine.steps for w in self.pool.workers), wall_s=time.perf_counter() - wall0,
        )  # fmt: skip

    def _work_left(self) -> bool:
        return self.ended_count < len(self.trace)

    # ----------------------------------------------------------------- requests
    def _make_request(self, i: int, now: int) -> Request:
        isl = self._isl[i]
        keys: list[int] = []
        if self._keys:
            unit = self.pool.spec.unit_tokens
            a = self._offsets[i]
            b = min(self._offsets[i + 1], a + isl // unit)
            keys = self._keys[a:b]
        return Request(i, isl, self._osl[i], keys, now)

    def _reject_reason(self, isl: int, osl: int) -> int:
        args = self.pool.spec.args
        tokens = isl + osl - 1  # the last token is sampled, never stored in KV
        if args.max_model_len is not None and isl + osl > args.max_model_len:
            return 2
        if -(-tokens // args.block_size) > self.pool.spec.num_blocks:
            return 1
        if not args.enable_chunked_prefill and tokens > args.max_num_batched_tokens:
            return 3
        return 0

    def start_worker(self, pool: Pool, now: int) -> Worker:
        """Provision a worker (planner scale-up): billed now, routable after ``startup_time``."""
        w = pool.start_worker(now)
        startup = int(pool.spec.args.startup_time * 1e9)
        if startup <= 0:
            pool.activate(w, now)
            while self._frontend and pool.routable:
                self._route(self._frontend.popleft(), now)
        else:
            self.q.push(now + startup, Kind.WORKER_READY, w)
        return w

    def _dispatch(self, i: int, now: int) -> None:
        rec = self.records
        rec.arrival_ns[i] = now
        if self.observer is not None:
            self.observer.arrived(self._isl[i], self._osl[i])
        reason = self._reject_reason(self._isl[i], self._osl[i])
        if reason:
            rec.status[i] = Status.REJECTED
            rec.reason[i] = reason
            self._request_ended(i, now, refill=False)
            return
        self._in_flight += 1
        if not self.pool.routable:
            self._frontend.append(i)  # every worker is starting or draining: wait at the frontend
            return
        self._route(i, now)

    def _route(self, i: int, now: int) -> None:
        rec = self.records
        req = self._make_request(i, int(rec.arrival_ns[i]))
        workers = self.pool.routable
        if self._sync_before_route:
            for w in workers:
                w.engine.sync(now, record=False)
        w = self.pool.router.choose(req, workers)
        rec.worker[i] = w.id
        eng = w.engine
        eng.add(req)
        if eng.busy:
            new_end = eng.interrupt(now)
            if new_end is not None:
                w.version += 1
                self.q.push(new_end, Kind.STEP_END, (w, w.version))
        else:
            self._kick(w, now)

    def _kick(self, w: Worker, now: int) -> None:
        if not w.kick_pending and not w.engine.busy:
            w.kick_pending = True
            self.q.push(now, Kind.KICK, w)

    def _on_kick(self, w: Worker, now: int) -> None:
        w.kick_pending = False
        if w.engine.busy:
            return
        end = w.engine.plan(now)
        if end is not None:
            w.version += 1
            self.q.push(end, Kind.STEP_END, (w, w.version))
        elif w.state == State.DRAINING:
            self.pool.maybe_stop(w, now)

    def _on_step_end(self, w: Worker, now: int) -> None:
        finished = w.engine.complete(now)
        rec = self.records
        for req in finished:
            i = req.idx
            rec.status[i] = Status.COMPLETED
            rec.first_token_ns[i] = req.first_token_ns
            rec.finish_ns[i] = req.finish_ns
            rec.cached_tokens[i] = req.cached_tokens
            rec.preemptions[i] = req.preemptions
            if self.observer is not None:
                itl = (req.finish_ns - req.first_token_ns) / (req.osl - 1) / 1e6 if req.osl > 1 else None
                self.observer.finished((req.first_token_ns - req.arrival_ns) / 1e6, itl, req.isl, req.cached_tokens)
            self.finished_count += 1
            self.last_completion_ns = now
            self._in_flight -= 1
            self._request_ended(i, now)
        if w.engine.has_work:
            self._kick(w, now)
        elif w.state == State.DRAINING:
            self.pool.maybe_stop(w, now)

    def _request_ended(self, i: int, now: int, refill: bool = True) -> None:
        """Release what depends on request ``i``: its session's next turn, a closed-loop slot."""
        self.ended_count += 1
        nxt = self._next_turn[i]
        if nxt >= 0:
            self.q.push(now + max(self._delay[nxt], 0), Kind.RELEASE, nxt)
        if refill and self.options.concurrency is not None:
            self._fill_closed_loop(now)

    def _on_release(self, i: int, now: int) -> None:
        if self.options.concurrency is None:
            self._dispatch(i, now)
        else:
            self._ready.appendleft(i)  # a session's next turn goes before new sessions
            self._fill_closed_loop(now)

    def _fill_closed_loop(self, now: int) -> None:
        assert self.options.concurrency is not None
        while self._ready and self._in_flight < self.options.concurrency:
            self._dispatch(self._ready.popleft(), now)
