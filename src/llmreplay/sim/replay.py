"""The replay driver: releases the trace's requests on the simulated clock, routes them to workers, runs
the workers' steps as events, and records what happened to every request.

Where a request is born, scheduled, timed, finished and counted:

* born: :meth:`Replay._dispatch` (open loop: at its trace arrival; session turn k>0: when turn k-1 ends plus
  its delay; closed loop: when a slot frees up);
* rejected up front if it can never fit (:meth:`Replay._reject_reason`), else routed to a worker
  (:mod:`llmreplay.cluster.router`) and queued in its engine;
* scheduled and timed by the engine (:mod:`llmreplay.engine.engine`), whose step ends are events here;
* disagg only: prefilled on a prefill worker (its first token ends TTFT there), then handed off
  (:meth:`Replay._drain_handoffs`): blocks are reserved on a decode worker, the KV is sent over the prefill
  worker's link (transfers from one worker queue on it), and the request decodes there from the next step;
* finished and counted in :class:`~llmreplay.metrics.records.RequestRecords`.
"""

from __future__ import annotations

import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from llmreplay.cluster.pool import Pool, PoolSpec
from llmreplay.cluster.worker import State, Worker
from llmreplay.engine.request import Request
from llmreplay.metrics.definitions import request_itl_ms, ttft_ms
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.metrics.records import RequestRecords, Status
from llmreplay.sim.events import EventQueue, Kind
from llmreplay.sim.idle import Collapsible, IdleTicks
from llmreplay.trace.model import Trace
from llmreplay.units import NS_PER_MS, NS_PER_S, s_to_ns

_NEVER = 1 << 62  # a time after every event

#: a hook the planner (or a sampler) registers: called at its own period with (replay, now_ns)
Periodic = Callable[["Replay", int], None]


class Observer(Protocol):
    """What a frontend-side observer (the planner) hears about requests."""

    def arrived(self, isl: int, osl: int) -> None: ...

    def finished(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int, osl: int = 0) -> None: ...


@dataclass
class ReplayOptions:
    seed: int = 0
    horizon_ns: int | None = None  # --max-sim-time-seconds
    concurrency: int | None = None  # --replay-concurrency (closed loop)
    fast_forward: bool = True  # False: the step-by-step reference mode (tests)
    #: skip a periodic planner's ticks over idle stretches once they repeat (exact; :mod:`llmreplay.sim.idle`)
    collapse_idle_ticks: bool = True
    progress: Callable[[int, int], None] | None = None  # (sim time ns, requests finished)
    #: disagg: prompts whose uncached part is below this are prefilled on the decode worker (None: never)
    local_prefill_max_tokens: int | None = None
    #: True: engines keep the planner's FPM columns only when a planner observes the run (memory); False: always
    #: (tests that read FPM detail without a planner)
    fpm_detail_only_for_planner: bool = False
    #: a planner tick runs before the trace arrivals of the same instant are routed, and after the frontend
    #: counted them (Dynamo's replay order); False: after they are routed
    ticks_before_arrivals: bool = False


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
    """One simulation run: an agg pool (``{"agg": pool}``) or a disagg pair (``{"prefill": p, "decode": d}``)."""

    def __init__(self, trace: Trace, pools: Pool | dict[str, Pool], options: ReplayOptions) -> None:
        self.trace = trace
        self.pools = {pools.name: pools} if isinstance(pools, Pool) else dict(pools)
        self.disagg = "prefill" in self.pools
        #: where requests enter (agg pool, or the prefill pool); decode pool (disagg only)
        self.pool = self.pools["prefill"] if self.disagg else self.pools["agg"]
        self.decode: Pool | None = self.pools.get("decode")
        if self.disagg and self.decode is None:
            raise ValueError("a disagg replay needs a 'decode' pool")
        self.options = options
        self.q = EventQueue()
        self.now = 0
        n = len(trace)
        self.records = RequestRecords.empty(trace.isl.copy(), trace.osl.copy(), trace.arrival_ns, trace.line)
        # per-request columns the event loop reads one value at a time: array('q') indexes as fast as a list
        # and takes 8 bytes a value instead of a list slot plus an int object (a million requests: ~300 MB less)
        self._keys = _int_array(trace.prefix_keys()) if trace.has_hashes else array("q")
        self._offsets = _int_array(trace.hash_offsets)
        self._isl = _int_array(trace.isl)
        self._osl = _int_array(trace.osl)
        self._arrival = _int_array(trace.arrival_ns)
        self._delay = _int_array(trace.delay_ns)
        # sessions: turn k+1 of a session is released after turn k ends
        self._next_turn = _int_array(np.full(n, -1, dtype=np.int64)) if trace.has_sessions else array("q")
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
        self._first_turns = _int_array(np.nonzero(first_turn)[0])
        self._periodic: list[tuple[int, Periodic]] = []
        self._idle: list[IdleTicks | None] = []  # per periodic hook: its idle-tick collapser, if any
        self.finished_count = 0
        self.ended_count = 0  # completed + rejected
        self.last_completion_ns = 0
        self._in_flight = 0
        self._ready: deque[int] = deque()
        self._sync_before_route = getattr(self.pool.router, "name", "") == "kv"
        self.observer: Observer | None = None
        self._frontend: deque[int] = deque()  # requests waiting for any worker to be routable
        # disagg hand-off: prefilled requests waiting for decode blocks (FIFO, visible in the report)
        self.handoffs: deque[tuple[Request, Worker]] = deque()
        self._link_free: dict[int, int] = {}  # prefill worker id -> its link is busy until
        self.handoff_wait_peak = 0
        self._next_arrival_ns = _NEVER  # the next trace arrival not yet dispatched (open loop)
        self._counted_ahead = 0  # trace arrivals the observer already heard of, before their dispatch

    # ----------------------------------------------------------------- hooks
    def every(self, period_ns: int, fn: Periodic, first_ns: int | None = None,
              idle: Collapsible | None = None) -> None:
        """Call ``fn(replay, now)`` every ``period_ns`` of simulated time (planner ticks, samplers). ``idle``:
        the planner ``fn`` ticks, whose repeating ticks over idle stretches may be skipped (exact)."""
        self._periodic.append((period_ns, fn))
        self._idle.append(IdleTicks(idle, period_ns) if idle is not None and self.options.collapse_idle_ticks
                          else None)
        self.q.push(first_ns if first_ns is not None else period_ns, Kind.TICK, len(self._periodic) - 1)

    def at(self, t_ns: int, fn: Periodic) -> None:
        """Call ``fn(replay, t_ns)`` once (a scripted scale change)."""
        self._periodic.append((0, fn))
        self._idle.append(None)
        self.q.push(t_ns, Kind.TICK, len(self._periodic) - 1)

    @property
    def all_workers(self) -> list[Worker]:
        return [w for p in self.pools.values() for w in p.workers]

    # ----------------------------------------------------------------- main loop
    def run(self) -> ReplayResult:
        wall0 = time.perf_counter()
        opts = self.options
        if opts.fpm_detail_only_for_planner and self.observer is None:
            for pool in self.pools.values():
                pool.drop_fpm_planner_detail()
        horizon = opts.horizon_ns
        q = self.q
        arrivals = self._first_turns
        n_arr = len(arrivals)
        ai = 0
        if opts.concurrency is not None:
            self._ready.extend(arrivals)
            n_arr = 0
            self._fill_closed_loop(0)
        arrival_t = self._arrival
        # where a trace arrival sorts among the events of its instant
        arrival_rank = Kind.TICK + 1 if opts.ticks_before_arrivals else Kind.RELEASE
        self._next_arrival_ns = arrival_t[arrivals[0]] if n_arr else _NEVER
        progress = opts.progress
        next_progress = 0
        n_events = 0
        while True:
            key = q.peek_key()
            if ai < n_arr:
                ta = arrival_t[arrivals[ai]]
                if key is None or (ta, arrival_rank) < key:
                    if horizon is not None and ta > horizon:
                        break
                    self.now = ta
                    ai += 1
                    self._next_arrival_ns = arrival_t[arrivals[ai]] if ai < n_arr else _NEVER
                    if self._counted_ahead:
                        self._counted_ahead -= 1
                        self._dispatch(arrivals[ai - 1], ta, counted=True)
                    else:
                        self._dispatch(arrivals[ai - 1], ta)
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
            elif kind == Kind.TRANSFER_DONE:
                req, src, dst_req, dst = payload
                self._on_transfer_done(req, src, dst_req, dst, t)
            elif kind == Kind.RELEASE:
                self._on_release(payload, t)
            elif kind == Kind.TICK:
                period, fn = self._periodic[payload]
                if opts.ticks_before_arrivals and self.observer is not None:
                    self._count_arrivals_at(t, arrivals, ai, n_arr)
                fn(self, t)
                if period and self._work_left():
                    idle = self._idle[payload]
                    nxt = t + period if idle is None else idle.next_tick(t, self._quiet_world, self._next_event_ns())
                    q.push(nxt, Kind.TICK, payload)
            elif kind == Kind.WORKER_READY:
                self._on_worker_ready(payload, t)
            if progress is not None and t >= next_progress:
                progress(t, self.finished_count)
                next_progress = t + NS_PER_S
        end = self.now if horizon is None else horizon
        if horizon is not None:
            for w in self.all_workers:
                w.engine.sync(horizon)
        still = self.records.status == Status.PENDING
        self.records.status[still] = Status.UNFINISHED
        h = self.last_completion_ns if horizon is None else horizon
        if progress is not None:
            progress(end, self.finished_count)
        return ReplayResult(
            records=self.records, pools=self.pools, icl=self.pool.icl, horizon_ns=h,
            last_completion_ns=self.last_completion_ns, events=n_events,
            steps=sum(w.engine.steps for w in self.all_workers), wall_s=time.perf_counter() - wall0,
            extras={"handoff_wait_peak": self.handoff_wait_peak} if self.disagg else {},
        )  # fmt: skip

    def _work_left(self) -> bool:
        return self.ended_count < len(self.trace)

    @property
    def idle_ticks_skipped(self) -> int:
        """Planner ticks not evaluated because they repeated over an idle stretch (a work counter)."""
        return sum(i.skipped for i in self._idle if i is not None)

    def _quiet_world(self) -> tuple[tuple[str, tuple[str, ...]], ...] | None:
        """The cluster's state when nothing in it moves but the clock (no request in flight, hand-off, queued
        request, busy engine, or worker starting or draining); None otherwise."""
        if self._in_flight or self.handoffs or self._frontend:
            return None
        world = []
        for name, pool in self.pools.items():
            for w in pool.workers:
                if w.state not in (State.ACTIVE, State.STOPPED) or w.engine.busy or w.kick_pending:
                    return None
            world.append((name, tuple(w.state.name for w in pool.workers)))
        return tuple(world)

    def _next_event_ns(self) -> int:
        """The first time something other than the tick just run happens: a queued event, the next arrival,
        or just past the horizon."""
        end = self.options.horizon_ns + 1 if self.options.horizon_ns is not None else _NEVER
        return min(self.q.next_time(), self._next_arrival_ns, end)

    # ----------------------------------------------------------------- requests
    def _make_request(self, i: int, now: int) -> Request:
        isl = self._isl[i]
        keys: list[int] = []
        if self._keys:
            unit = self.pool.spec.unit_tokens
            a = self._offsets[i]
            b = min(self._offsets[i + 1], a + isl // unit)
            keys = self._keys[a:b].tolist()
        return Request(i, isl, self._osl[i], keys, now)

    def _reject_reason(self, isl: int, osl: int) -> int:
        """Why a request can never be served (0: it can). Disagg: the prompt must fit a prefill worker and the
        whole sequence a decode worker."""
        checks = [(self.pool, isl + osl - 1 if not self.disagg else isl)]
        if self.decode is not None:
            checks.append((self.decode, isl + osl - 1))
        for pool, tokens in checks:  # the last token is sampled, never stored in KV
            args = pool.spec.args
            if args.max_model_len is not None and isl + osl > args.max_model_len:
                return 2
            if -(-tokens // args.block_size) > pool.spec.num_blocks:
                return 1
            if not args.enable_chunked_prefill and tokens > args.max_num_batched_tokens:
                return 3
        return 0

    def start_worker(self, pool: Pool, now: int) -> Worker:
        """Provision a worker (planner scale-up): billed now, routable after ``startup_time``."""
        w = pool.start_worker(now)
        startup = s_to_ns(pool.spec.args.startup_time)
        if startup <= 0:
            self._on_worker_ready(w, now)
        else:
            self.q.push(now + startup, Kind.WORKER_READY, w)
        return w

    def _on_worker_ready(self, w: Worker, now: int) -> None:
        pool = self.pools[w.pool_name]
        pool.activate(w, now)
        if pool is self.pool:
            while self._frontend and pool.routable:
                self._route(self._frontend.popleft(), now)
        if pool is self.decode:
            self._drain_handoffs(now)

    def _count_arrivals_at(self, t: int, arrivals: array[int], ai: int, n_arr: int) -> None:
        """Tell the observer of the trace arrivals at ``t`` not yet counted, ahead of their dispatch (after the
        tick): Dynamo's frontend counts a request arriving at a tick's instant in the window that tick reads
        (the reference run's first window holds the 166 arrivals at ≤ 60.000 s), while the tick's scaling acts
        before the request is routed."""
        assert self.observer is not None
        j = ai + self._counted_ahead
        while j < n_arr and self._arrival[arrivals[j]] == t:
            i = arrivals[j]
            self.observer.arrived(self._isl[i], self._osl[i])
            self._counted_ahead += 1
            j += 1

    def _dispatch(self, i: int, now: int, counted: bool = False) -> None:
        rec = self.records
        rec.arrival_ns[i] = now
        if self.observer is not None and not counted:
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
        pool = self.pool
        if self.disagg:
            req.hold_kv = True
            if self._prefill_locally(req, now):
                pool = self.decode  # type: ignore[assignment]
                req.hold_kv = False
        workers = pool.routable
        if self._sync_before_route:
            for w in workers:
                w.engine.sync(now, record=False)
        w = pool.router.choose(req, workers)
        if req.hold_kv:
            rec.prefill_worker[i] = w.id
        else:
            rec.worker[i] = w.id
        w.engine.add(req)
        self._touch(w, now)

    def _prefill_locally(self, req: Request, now: int) -> bool:
        """Conditional disagg: a short uncached prompt is cheaper to prefill on a decode worker."""
        limit = self.options.local_prefill_max_tokens
        decode = self.decode
        if limit is None or decode is None or not decode.routable:
            return False
        best = max(w.view.cached_prefix_tokens(req.keys) for w in decode.routable)
        return req.isl - best < limit

    def _touch(self, w: Worker, now: int) -> None:
        """Something new reached ``w``'s engine: cut its stretch short, or wake it up."""
        eng = w.engine
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
            self.pools[w.pool_name].maybe_stop(w, now)

    def _on_step_end(self, w: Worker, now: int) -> None:
        finished = w.engine.complete(now)
        rec = self.records
        for req in finished:
            i = req.idx
            if req.hold_kv:  # disagg prefill done: first token out, KV to hand off
                rec.first_token_ns[i] = req.first_token_ns
                rec.cached_tokens[i] = req.cached_tokens
                rec.preemptions[i] += req.preemptions
                req.preemptions = 0
                if req.osl <= 1:  # nothing to decode: done at the prefill worker
                    w.engine.release_held(req)
                    req.finish_ns = now
                    self._complete(req, now)
                else:
                    self.handoffs.append((req, w))
                continue
            self._complete(req, now)
        if self.handoffs:
            self._drain_handoffs(now)
        if w.engine.has_work:
            if self.q.next_time() > now and self._next_arrival_ns > now:
                # nothing else happens at this instant: the kick would be the next event, so run it now
                # (saves a heap push and pop per step; the order of events is the same)
                self._on_kick(w, now)
            else:
                self._kick(w, now)
        elif w.state == State.DRAINING:
            self.pools[w.pool_name].maybe_stop(w, now)

    def _complete(self, req: Request, now: int) -> None:
        rec = self.records
        i = req.idx
        rec.status[i] = Status.COMPLETED
        rec.first_token_ns[i] = req.first_token_ns
        rec.finish_ns[i] = req.finish_ns
        if rec.cached_tokens[i] < 0:
            rec.cached_tokens[i] = req.cached_tokens
        rec.preemptions[i] += req.preemptions
        if self.observer is not None:
            itl = request_itl_ms(req.first_token_ns, req.finish_ns, req.osl)
            self.observer.finished(ttft_ms(req.arrival_ns, req.first_token_ns), itl, req.isl,
                                   int(rec.cached_tokens[i]), osl=req.osl)
        self.finished_count += 1
        self.last_completion_ns = now
        self._in_flight -= 1
        self._request_ended(i, now)

    # ----------------------------------------------------------------- disagg hand-off
    def _drain_handoffs(self, now: int) -> None:
        """Start the KV transfer of each waiting prefilled request, in order, once a decode worker can reserve
        its blocks; the head waits (and holds its prefill blocks) while none can."""
        decode = self.decode
        assert decode is not None
        while self.handoffs:
            req, src = self.handoffs[0]
            best: Worker | None = None
            for w in decode.routable:
                w.engine.sync(now, record=False)
                if w.engine.can_reserve(req) and (best is None or w.view.kv_used_blocks < best.view.kv_used_blocks):
                    best = w
            if best is None:
                self.handoff_wait_peak = max(self.handoff_wait_peak, len(self.handoffs))
                return
            self.handoffs.popleft()
            # the prefill engine holds its blocks until the transfer ends; the decode side gets its own copy
            dst_req = _decode_copy(req)
            best.engine.reserve(dst_req)
            self._touch(best, now)  # the reservation changes its KV budget: replan from the current step
            dur = transfer_ns(req.isl, self.pool.spec)
            start = max(now, self._link_free.get(src.id, 0))
            end = start + dur
            self._link_free[src.id] = end
            self.records.worker[req.idx] = best.id
            self.records.transfer_ns[req.idx] = dur
            self.q.push(end, Kind.TRANSFER_DONE, (req, src, dst_req, best))

    def _on_transfer_done(self, req: Request, src: Worker, dst_req: Request, dst: Worker, now: int) -> None:
        src.engine.release_held(req)
        self._touch(src, now)  # freed blocks may admit waiting prompts from the next step
        if src.state == State.DRAINING and not src.engine.has_work and not src.engine.busy:
            self.pools[src.pool_name].maybe_stop(src, now)
        dst.engine.transferred(dst_req)
        self._touch(dst, now)
        if self.handoffs:
            self._drain_handoffs(now)

    # ----------------------------------------------------------------- sessions, closed loop
    def _request_ended(self, i: int, now: int, refill: bool = True) -> None:
        """Release what depends on request ``i``: its session's next turn, a closed-loop slot."""
        self.ended_count += 1
        nxt = self._next_turn[i] if self._next_turn else -1
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


def _int_array(values: np.ndarray[Any, Any]) -> array[int]:
    out = array("q")
    out.frombytes(np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return out


def transfer_ns(prompt_tokens: int, prefill: PoolSpec) -> int:
    """KV transfer time of a prompt: its KV bytes (all layers, K and V, KV heads × head size × KV dtype) over the
    prefill worker's link, plus the fixed latency (engine args ``kv_transfer_bandwidth`` GB/s,
    ``kv_transfer_latency_ms``)."""
    args = prefill.args
    seconds = prompt_tokens * prefill.kv_bytes_per_token / (args.kv_transfer_bandwidth * 1e9)  # GB/s
    return round(seconds * NS_PER_S + args.kv_transfer_latency_ms * NS_PER_MS)


def _decode_copy(req: Request) -> Request:
    """The decode worker's own copy of a prefilled request (its prompt in KV, first token already out)."""
    r = Request(req.idx, req.isl, req.osl, req.keys, req.arrival_ns)
    r.generated = 1
    r.first_token_ns = req.first_token_ns
    r.last_token_ns = req.first_token_ns
    r.cached_tokens = req.cached_tokens
    return r
