"""One engine replica: a vLLM-v1-style scheduler over a :class:`BlockPool`, timed by a perf model.

Each *step* is one forward pass: every running decode request computes one token, and the rest of the
token budget (``max_num_batched_tokens``) goes to prefill chunks, first of partially prefilled requests,
then of waiting ones admitted FCFS (head-of-line blocking, as vLLM). The step that completes a prompt's
prefill emits its first token; each later step emits one more; a request with ``osl`` n finishes with its
n-th token.

Scheduling policy (documented deviations from vLLM v1 in ``docs/design.md``): decode tokens are scheduled
before prefill chunks, so a long prompt never starves running decodes of budget; when KV blocks run out the
newest (``lifo``) or oldest (``fifo``) running request is preempted, its blocks freed, and it goes to the
front of the waiting queue to recompute; no admissions happen in a step that preempted.

**Fast-forward.** When a step has no prefill work and no admission can happen, the following steps are
identical except that every decode context grows by one token, so the engine plans a whole *stretch*:
step times come from one vectorised perf-model call and one integer cumsum, KV blocks from a per-phase
count of requests (a request needs a new block every ``block_size`` tokens). A stretch ends at the next
completion, before KV would run out, or when something external happens (an arrival, a planner tick):
:meth:`Engine.interrupt` cuts it at the end of the step in progress. All times are integer ns, so a
fast-forwarded run equals the step-by-step reference (``fast_forward=False``) exactly.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmreplay.engine.config import EngineArgs
from llmreplay.engine.fpm import FpmLog
from llmreplay.engine.kv_cache import BlockPool
from llmreplay.engine.perf.base import PerfModel, to_ns
from llmreplay.engine.request import Phase, Request
from llmreplay.metrics.histogram import LogHistogram

if TYPE_CHECKING:
    from llmreplay.cost.power import StepPower

I64 = npt.NDArray[np.int64]

#: longest stretch planned at once; a longer run of decode steps is planned again at its end
MAX_STRETCH_STEPS = 4096


@dataclass
class _Pending:
    """The step (``k == 1``) or stretch of decode steps in progress."""

    start_ns: int
    ends: I64  # absolute end time of each step
    counter0: int  # engine.counter at the first step
    needs: I64  # new KV blocks each step needs (needs[0] is allocated at plan time)
    applied: int = 0  # steps already applied (tokens emitted)
    recorded: int = 0  # steps already written to the FPM log and the token-gap histogram
    allocated: int = 1  # steps whose blocks are allocated
    chunks: list[tuple[Request, int]] | None = None  # prefill chunks (only when a single mixed step)
    prefill_ctx: int = 0
    prefill_attention: int = 0
    #: disagg: requests decoding their second token in the first step; their token gap started at the
    #: prefill worker (transfer included), not at the previous step
    joined: list[Request] | None = None

    @property
    def k(self) -> int:
        return int(self.ends.shape[0])

    @property
    def end_ns(self) -> int:
        return int(self.ends[-1])


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _stale(entry: tuple[int, int, Request]) -> bool:
    req = entry[2]
    return req.phase != Phase.DECODE or entry[0] != req.offset + req.osl


class Engine:
    """Scheduler + KV pool + clock of one worker. The cluster calls :meth:`add`, :meth:`plan`,
    :meth:`interrupt` and :meth:`complete`; everything else is internal state."""

    def __init__(
        self,
        worker_id: int,
        args: EngineArgs,
        perf: PerfModel,
        num_blocks: int,
        unit_tokens: int,
        icl: LogHistogram,
        fast_forward: bool = True,
    ) -> None:
        if unit_tokens % args.block_size:
            raise ValueError("trace block size must be a multiple of the engine block size")
        self.id = worker_id
        self.args = args
        self.perf = perf
        self.B = args.block_size
        self.T = unit_tokens
        self.U = unit_tokens // args.block_size
        self.mbt = args.max_num_batched_tokens
        self.max_seqs = args.max_num_seqs
        self.chunked = args.enable_chunked_prefill
        self.lifo = args.preemption_mode == "lifo"
        self.speedup = args.speedup_ratio
        self.pool = BlockPool(num_blocks, self.U, args.enable_prefix_caching)
        self.fast_forward = fast_forward
        self.icl = icl
        self.fpm = FpmLog(worker_id)

        self.waiting: deque[Request] = deque()
        self.running: dict[int, Request] = {}  # admission order
        self.prefilling: list[Request] = []
        # decode batch, O(1) per step: generated = counter - offset
        self.counter = 0
        self.n_dec = 0
        self.dec_sum_const = 0  # sum(isl - offset) over decode requests; context sum = this + n_dec*counter
        self.phase_count = np.zeros(self.B, dtype=np.int64)
        self._finish_heap: list[tuple[int, int, Request]] = []
        self.queued_prefill_tokens = 0
        self.pending: _Pending | None = None
        # disagg: prefilled requests holding KV here (prefill side), reserved / arrived ones (decode side)
        self.held: dict[int, Request] = {}
        self.incoming: dict[int, Request] = {}
        self._arrived: list[Request] = []
        # counters for the report
        self.steps = 0
        self.busy_ns = 0
        self.preemptions = 0
        self.prompt_tokens_admitted = 0
        self.cached_tokens_admitted = 0
        # energy: joules above idle of the steps run (llmreplay.cost.power), set by the pool
        self.power: StepPower | None = None
        self.active_j = 0.0

    # ------------------------------------------------------------------ public API
    @property
    def busy(self) -> bool:
        return self.pending is not None

    @property
    def has_work(self) -> bool:
        return bool(self.running or self.waiting or self._arrived)

    def add(self, req: Request) -> None:
        """A routed request joins the waiting queue (scheduled at the next step boundary)."""
        req.phase = Phase.WAITING
        req.worker = self.id
        self.waiting.append(req)
        self.queued_prefill_tokens += req.num_tokens

    # ------------------------------------------------------------------ disagg hand-off
    def release_held(self, req: Request) -> None:
        """Prefill side: the KV transfer of ``req`` ended; free its blocks."""
        del self.held[req.idx]
        self.pool.release(req.held_keys, req.blocks - self.U * len(req.held_keys))
        req.held_keys = []
        req.blocks = 0

    def reserve(self, req: Request) -> bool:
        """Decode side: reserve KV blocks for ``req``'s prompt before its transfer starts (the cached prefix
        here is shared, not reserved twice). False when the blocks or a sequence slot are not free now."""
        if not self.can_reserve(req):
            return False
        max_units = min(len(req.keys), req.isl // self.T)
        hits, from_lru = self.pool.match_prefix(req.keys, max_units)
        need = _cdiv(req.isl, self.B) - hits * self.U
        if need > self.pool.allocatable - self.U * from_lru:
            return False
        self.pool.acquire_prefix(req.keys, hits)
        self.pool.allocate(need)
        req.held_keys = list(req.keys[:hits])
        req.next_unit = hits
        req.blocks = hits * self.U + need
        req.num_computed = req.isl
        req.num_tokens = req.isl + 1
        req.phase = Phase.INCOMING
        req.worker = self.id
        self.incoming[req.idx] = req
        return True

    def can_reserve(self, req: Request) -> bool:
        """Whether :meth:`reserve` would succeed now. Requests already queued here (preempted ones waiting to
        recompute, or prompts prefilled locally) go first: a hand-off does not overtake them."""
        if self.waiting or len(self.running) + len(self.incoming) + len(self._arrived) >= self.max_seqs:
            return False
        hits, from_lru = self.pool.match_prefix(req.keys, min(len(req.keys), req.isl // self.T))
        return _cdiv(req.isl, self.B) - hits * self.U <= self.pool.allocatable - self.U * from_lru

    def transferred(self, req: Request) -> None:
        """Decode side: ``req``'s KV has arrived; it decodes from the next step boundary."""
        del self.incoming[req.idx]
        self._arrived.append(req)

    def _join_arrived(self) -> None:
        for req in self._arrived:
            full_units = min(len(req.keys), req.isl // self.T)
            while req.next_unit < full_units:  # the transferred prompt is cached here too
                key = req.keys[req.next_unit]
                if self.pool.promote(key):
                    req.held_keys.append(key)
                req.next_unit += 1
            self.running[req.idx] = req
            self._enter_decode(req)
        self._arrived.clear()

    def plan(self, now: int) -> int | None:
        """Schedule the next step (or stretch) starting at ``now``; return its end time, or None if idle."""
        assert self.pending is None
        joined = list(self._arrived) if self._arrived else None
        if joined:
            self._join_arrived()
        end = self._plan(now)
        if joined and self.pending is not None:
            self.pending.joined = [r for r in joined if r.phase == Phase.DECODE]
        return end

    def _plan(self, now: int) -> int | None:
        if not (self.running or self.waiting):
            return None
        B = self.B
        pool = self.pool
        preempted = False
        # 1. decode tokens first: one per running decode request
        need0 = int(self.phase_count[self.counter % B]) if self.n_dec else 0
        while need0 > pool.allocatable:
            victim = self._victim()
            if victim.phase == Phase.DECODE and self._needs_block(victim):
                need0 -= 1
            self._preempt(victim, now, step_allocated=False)
            preempted = True
        pool.allocate(need0)
        budget = self.mbt - self.n_dec
        # 2. prefill chunks of running (partially prefilled) requests, in admission order
        chunks: list[tuple[Request, int]] = []
        for req in list(self.prefilling):
            if budget <= 0:
                break
            if req.phase != Phase.PREFILL:
                continue  # preempted earlier in this loop
            remaining = req.num_tokens - req.num_computed
            if not self.chunked and remaining > budget:
                break
            new = min(remaining, budget)
            need = _cdiv(req.num_computed + new, B) - req.blocks
            while not pool.allocate(need):
                victim = self._victim()
                budget += self._preempt(victim, now, step_allocated=True, chunks=chunks)
                preempted = True
                if victim is req:
                    break
            if req.phase != Phase.PREFILL:
                break
            req.blocks += max(need, 0)
            chunks.append((req, new))
            budget -= new
        # 3. admissions, FCFS with head-of-line blocking, none in a step that preempted
        if not preempted:
            budget = self._admit(budget, chunks)
        # 4. timing
        if chunks:
            return self._plan_mixed(now, need0, chunks)
        if self.n_dec == 0 and preempted:
            # every running request was preempted: admit again rather than idle with work queued
            self._admit(budget, chunks)
            if chunks:
                return self._plan_mixed(now, need0, chunks)
        if self.n_dec == 0:
            if self.held or self.incoming:
                return None  # disagg: blocks are tied up by hand-offs; a transfer's end will wake us
            # cannot happen: a request that fits alone is admitted into an empty engine
            raise RuntimeError(f"engine {self.id} stalled with {len(self.waiting)} waiting requests")
        k = 1
        if self.fast_forward and not preempted:
            k = self._stretch_length()
        steps = np.arange(self.counter, self.counter + k, dtype=np.int64)
        needs = self.phase_count[steps % B]
        kv_tokens = self.dec_sum_const + self.n_dec * steps
        durs = to_ns(self.perf.decode_steps_s(self.n_dec, kv_tokens), self.speedup)
        ends = now + np.cumsum(durs)
        self.pending = _Pending(now, ends, self.counter, needs)
        return int(ends[-1])

    def _plan_mixed(self, now: int, need0: int, chunks: list[tuple[Request, int]]) -> int:
        new_tokens = [n for _, n in chunks]
        ctx = [r.num_computed for r, _ in chunks]
        kv = self.dec_sum_const + self.n_dec * self.counter
        dur = int(to_ns(np.asarray(self.perf.step_s(new_tokens, ctx, self.n_dec, kv)), self.speedup))
        ends = np.asarray([now + dur], dtype=np.int64)
        needs = np.asarray([need0], dtype=np.int64)
        attention = sum(n * (c + n // 2) for n, c in zip(new_tokens, ctx, strict=True))
        self.pending = _Pending(now, ends, self.counter, needs, chunks=chunks, prefill_ctx=sum(ctx),
                                prefill_attention=attention)
        return now + dur

    def interrupt(self, now: int) -> int | None:
        """Something new happened at ``now`` (say an arrival): end the pending stretch at the end of the
        step in progress. Returns the new end time if it moved, else None."""
        p = self.pending
        if p is None or p.k == 1:
            return None
        j = int(np.searchsorted(p.ends, now, side="left"))  # step in progress (ends[j] >= now)
        if j >= p.k - 1:
            return None
        self._apply_steps(now)
        p.ends = p.ends[: j + 1]
        p.needs = p.needs[: j + 1]
        return int(p.ends[-1])

    def sync(self, now: int, record: bool = True) -> None:
        """Apply the steps of the pending stretch that ended by ``now`` so the engine's state (KV use,
        tokens, FPMs) is what a live observer would see at ``now``. ``record`` False: a router's peek, which
        only needs the state."""
        if self.pending is not None and self.pending.k > 1:
            self._apply_steps(now, record)

    def complete(self, now: int) -> list[Request]:
        """The pending step/stretch ended at ``now``: apply it; return requests that finished."""
        p = self.pending
        assert p is not None and p.end_ns == now
        finished: list[Request] = []
        if p.chunks is not None:
            self._complete_mixed(p, now, finished)
        else:
            self._apply_steps(now)
            self._pop_finished(now, finished)
        self.pending = None
        return finished

    # ------------------------------------------------------------------ internals
    def _needs_block(self, req: Request) -> bool:
        return req.phase_key == self.counter % self.B

    def _victim(self) -> Request:
        if self.lifo:
            return next(reversed(self.running.values()))
        return next(iter(self.running.values()))

    def _admit(self, budget: int, chunks: list[tuple[Request, int]]) -> int:
        pool = self.pool
        B, T, U = self.B, self.T, self.U
        waiting = self.waiting
        while waiting and budget > 0 and len(self.running) < self.max_seqs:
            req = waiting[0]
            max_units = min(len(req.keys), (req.num_tokens - 1) // T)
            hits, from_lru = pool.match_prefix(req.keys, max_units)
            computed = hits * T
            remaining = req.num_tokens - computed
            if not self.chunked and remaining > budget:
                break
            new = min(remaining, budget)
            need = _cdiv(computed + new, B) - hits * U
            if need > pool.allocatable - U * from_lru:
                break
            waiting.popleft()
            pool.acquire_prefix(req.keys, hits)
            pool.allocate(need)
            req.held_keys = list(req.keys[:hits])
            req.next_unit = hits
            req.num_computed = computed
            req.blocks = hits * U + need
            req.phase = Phase.PREFILL
            self.queued_prefill_tokens -= computed
            if req.cached_tokens < 0:
                req.cached_tokens = computed
                self.prompt_tokens_admitted += req.isl
                self.cached_tokens_admitted += computed
            self.running[req.idx] = req
            self.prefilling.append(req)
            chunks.append((req, new))
            budget -= new
        return budget

    def _stretch_length(self) -> int:
        """How many identical decode steps can run from now: up to the next completion, while KV lasts."""
        heap = self._finish_heap
        while heap and _stale(heap[0]):
            heapq.heappop(heap)  # entry of a request preempted since
        k = min(MAX_STRETCH_STEPS, heap[0][0] - self.counter) if heap else MAX_STRETCH_STEPS
        if k <= 1:
            return 1
        steps = np.arange(self.counter + 1, self.counter + k, dtype=np.int64)
        cum = np.cumsum(self.phase_count[steps % self.B])
        fits = int(np.searchsorted(cum, self.pool.allocatable, side="right"))
        return 1 + min(fits, k - 1)

    def _apply_steps(self, now: int, record: bool = True) -> None:
        """Apply the stretch's steps that ended by ``now`` (and allocate blocks of steps started before).

        With ``record`` False (a router peeking at the engine) only the state moves; the FPM record and the
        token-gap histogram for those steps are written by the next recording call, so a stretch yields a
        few records however often it is observed."""
        p = self.pending
        assert p is not None and p.chunks is None
        done = int(np.searchsorted(p.ends, now, side="right"))
        started = min(p.k, int(np.searchsorted(p.ends, now, side="left")) + 1)
        if started > p.allocated:
            ok = self.pool.allocate(int(p.needs[p.allocated : started].sum()))
            assert ok, "stretch planned beyond KV capacity"
            p.allocated = started
        if done > p.applied:
            t_prev = p.start_ns if p.applied == 0 else int(p.ends[p.applied - 1])
            self.busy_ns += int(p.ends[done - 1]) - t_prev
            if self.power is not None:  # energy of exactly these steps
                kv0 = self.dec_sum_const + self.n_dec * (p.counter0 + p.applied)
                self.active_j += self.power.decode_j(self.n_dec, kv0, t_prev, p.ends[p.applied : done])
            self.steps += done - p.applied
            self.counter = p.counter0 + done
            p.applied = done
        if not record or p.recorded >= p.applied:
            return
        a, b = p.recorded, p.applied
        n = self.n_dec
        t0 = p.start_ns if a == 0 else int(p.ends[a - 1])
        ends = p.ends[a:b]
        durs = np.empty(b - a, dtype=np.int64)
        durs[0] = ends[0] - t0
        np.subtract(ends[1:], ends[:-1], out=durs[1:])
        if a == 0 and p.joined:
            self._record_joined(p.joined, int(ends[0]))
            self.icl.add(int(durs[0]), n - len(p.joined))
            self.icl.add_many(durs[1:], n)
        else:
            self.icl.add_many(durs, n)
        p.recorded = b
        self.fpm.append(
            t0, int(p.ends[b - 1]), b - a, 0, 0, 0, 0, n,
            self.dec_sum_const + n * (p.counter0 + a), self.dec_sum_const + n * (p.counter0 + b - 1),
            self.pool.used, len(self.running), len(self.waiting), self.queued_prefill_tokens,
        )  # fmt: skip

    def _complete_mixed(self, p: _Pending, now: int, finished: list[Request]) -> None:
        chunks = p.chunks
        assert chunks is not None
        n = self.n_dec
        kv = self.dec_sum_const + n * self.counter
        dur = now - p.start_ns
        if p.joined:
            self._record_joined(p.joined, now)
        self.icl.add(dur, n - len(p.joined or ()))
        self.counter += 1
        self.steps += 1
        self.busy_ns += dur
        if self.power is not None:
            self.active_j += self.power.mixed_j(len(chunks), sum(new for _, new in chunks), p.prefill_ctx,
                                                p.prefill_attention, n, kv, dur)
        self._pop_finished(now, finished)
        pool = self.pool
        T = self.T
        prefill_tokens = 0
        for req, new in chunks:
            prefill_tokens += new
            req.num_computed += new
            self.queued_prefill_tokens -= new
            # cache the trace blocks this chunk completed
            full_units = min(len(req.keys), req.num_computed // T)
            while req.next_unit < full_units:
                key = req.keys[req.next_unit]
                if pool.promote(key):
                    req.held_keys.append(key)
                req.next_unit += 1
            if req.num_computed < req.num_tokens:
                continue
            # prefill (or recompute) done: this step samples a token
            self.prefilling.remove(req)
            req.generated += 1
            req.num_tokens += 1
            if req.first_token_ns < 0:
                req.first_token_ns = now
            else:
                self.icl.add(now - req.last_token_ns, 1)  # resumed after preemption
            req.last_token_ns = now
            if req.hold_kv:  # disagg prefill: done here, KV kept for the transfer
                req.phase = Phase.HELD
                del self.running[req.idx]
                self.held[req.idx] = req
                finished.append(req)
            elif req.generated >= req.osl:
                self._finish(req, now, finished)
            else:
                self._enter_decode(req)
        self.fpm.append(
            p.start_ns, now, 1, len(chunks), prefill_tokens, p.prefill_ctx, p.prefill_attention, n, kv, kv,
            pool.used, len(self.running), len(self.waiting), self.queued_prefill_tokens,
        )  # fmt: skip

    def _record_joined(self, joined: list[Request], second_token_ns: int) -> None:
        for r in joined:
            self.icl.add(second_token_ns - r.first_token_ns, 1)

    def _enter_decode(self, req: Request) -> None:
        req.phase = Phase.DECODE
        req.offset = self.counter - req.generated
        # the step at counter c needs a new block for req iff (isl + c - offset - 1) % B == 0
        req.phase_key = (req.offset + 1 - req.isl) % self.B
        self.phase_count[req.phase_key] += 1
        self.n_dec += 1
        self.dec_sum_const += req.isl - req.offset
        heapq.heappush(self._finish_heap, (req.offset + req.osl, req.idx, req))

    def _leave_decode(self, req: Request) -> None:
        req.generated = self.counter - req.offset
        self.phase_count[req.phase_key] -= 1
        self.n_dec -= 1
        self.dec_sum_const -= req.isl - req.offset
        req.num_tokens = req.isl + req.generated
        req.num_computed = req.num_tokens - 1
        req.blocks = _cdiv(req.num_computed, self.B)

    def _pop_finished(self, now: int, finished: list[Request]) -> None:
        heap = self._finish_heap
        while heap and heap[0][0] <= self.counter:
            entry = heapq.heappop(heap)
            if _stale(entry):
                continue
            req = entry[2]
            self._leave_decode(req)
            req.last_token_ns = now
            self._finish(req, now, finished)

    def _finish(self, req: Request, now: int, finished: list[Request]) -> None:
        req.finish_ns = now
        req.phase = Phase.DONE
        del self.running[req.idx]
        self.pool.release(req.held_keys, req.blocks - self.U * len(req.held_keys))
        req.held_keys = []
        finished.append(req)

    def _preempt(
        self,
        req: Request,
        now: int,
        step_allocated: bool,
        chunks: list[tuple[Request, int]] | None = None,
    ) -> int:
        """Free ``req``'s blocks and send it to the front of the waiting queue to recompute. Returns the
        step budget this gives back (its decode token or its already scheduled chunk)."""
        refund = 0
        if req.phase == Phase.DECODE:
            extra = 1 if (step_allocated and self._needs_block(req)) else 0
            self._leave_decode(req)
            req.blocks += extra
            req.last_token_ns = now
            refund = 1 if step_allocated else 0
        else:  # PREFILL
            self.prefilling.remove(req)
            if chunks is not None:
                for i, (r, n) in enumerate(chunks):
                    if r is req:
                        refund = n
                        del chunks[i]
                        break
        self.pool.release(req.held_keys, req.blocks - self.U * len(req.held_keys))
        del self.running[req.idx]
        # all its tokens must be computed again (a decoding request had none left queued)
        self.queued_prefill_tokens += req.num_tokens if req.phase == Phase.DECODE else req.num_computed
        req.held_keys = []
        req.blocks = 0
        req.num_computed = 0
        req.next_unit = 0
        req.preemptions += 1
        req.phase = Phase.WAITING
        self.waiting.appendleft(req)
        self.preemptions += 1
        return refund
