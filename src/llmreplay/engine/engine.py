"""One engine replica: a vLLM-v1-style scheduler over a :class:`KVCacheManager`, timed by a perf model.

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
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from llmreplay.engine.config import EngineArgs
from llmreplay.engine.fpm import FpmLog
from llmreplay.engine.kv_cache_manager import KVCacheManager, cdiv
from llmreplay.engine.perf.base import PerfModel, seconds_to_ns, to_ns
from llmreplay.engine.request import Phase, Request
from llmreplay.metrics.histogram import LogHistogram

if TYPE_CHECKING:
    from llmreplay.cost.power import StepPower

I64 = npt.NDArray[np.int64]

#: longest stretch planned at once; a longer run of decode steps is planned again at its end
MAX_STRETCH_STEPS = 4096


@dataclass(slots=True, frozen=True)
class _BlockOpenings:
    """When the decode batch opens new KV blocks, in closed form. A decoding request of block phase ``p`` opens
    a block at every step ``s`` with ``s % block_size == p``; with ``n`` requests decoding, ``prefix[j]`` of them
    having a phase below ``j``, the steps ``0 .. s-1`` open ``(s // block_size) * n + prefix[s % block_size]``
    blocks. Two of these counts give the blocks of any run of steps in O(1), where a per-step array would cost
    a few numpy calls per stretch."""

    n: int
    block_size: int
    prefix: list[int]

    def before(self, step: int) -> int:
        """Blocks opened by the steps ``0 .. step-1``."""
        q, r = divmod(step, self.block_size)
        return q * self.n + self.prefix[r]

    def last_step_within(self, budget: int) -> int:
        """The largest ``s`` with ``before(s) <= budget`` (``n > 0``)."""
        q, rem = divmod(budget, self.n)
        return q * self.block_size + bisect_right(self.prefix, rem, 0, self.block_size) - 1


@dataclass(slots=True)
class _Pending:
    """The step (``k == 1``) or stretch of decode steps in progress. Plain Python lists: the event loop reads
    them a few times per event, where numpy's per-call overhead on short arrays would dominate."""

    start_ns: int
    step_ends: list[int]  # absolute end time of each step
    first_step: int  # engine.steps at the first step
    #: the decode batch's block openings (step 0's blocks are allocated at plan time; None: a single step)
    openings: _BlockOpenings | None
    #: duration of each step (decode steps only: the token-gap histogram takes them as one vector)
    durations: I64 | None = None
    applied: int = 0  # steps already applied (tokens emitted)
    recorded: int = 0  # steps already written to the FPM log and the token-gap histogram
    allocated: int = 1  # steps whose blocks are allocated
    chunks: list[tuple[Request, int]] | None = None  # prefill chunks (only when a single mixed step)
    prefill_context_tokens: int = 0
    prefill_attention: int = 0
    #: disagg: requests decoding their second token in the first step; their token gap started at the
    #: prefill worker (transfer included), not at the previous step
    joined: list[Request] | None = None
    #: the waiting queue after this step's scheduling (:meth:`Engine.waiting_queue`), when snapshots are on
    queue: tuple[int, int, int, int] | None = None

    @property
    def k(self) -> int:
        return len(self.step_ends)

    @property
    def end_ns(self) -> int:
        return self.step_ends[-1]


def _stale(entry: tuple[int, int, Request]) -> bool:
    req = entry[2]
    return req.phase != Phase.DECODE or entry[0] != req.decode_origin + req.osl


class Engine:
    """Scheduler + KV cache + clock of one worker. The cluster calls :meth:`add`, :meth:`plan`,
    :meth:`interrupt` and :meth:`complete`; routers and planners read :attr:`view`; everything else is
    internal state."""

    def __init__(
        self,
        worker_id: int,
        args: EngineArgs,
        perf: PerfModel,
        num_blocks: int,
        hash_block_tokens: int,
        token_gaps: LogHistogram,
        fast_forward: bool = True,
        fpm_planner_detail: bool = True,
    ) -> None:
        self.id = worker_id
        self.args = args
        self.perf = perf
        self.kv_cache = KVCacheManager(num_blocks, args.block_size, hash_block_tokens, args.enable_prefix_caching,
                                       args.evict_prompt_head_first)
        self.block_size = args.block_size
        self.hash_block_tokens = hash_block_tokens
        self.max_num_batched_tokens = args.max_num_batched_tokens
        self.max_num_seqs = args.max_num_seqs
        self.chunked_prefill = args.enable_chunked_prefill
        self.cache_on_schedule = args.prefix_cache_on_schedule
        self.admit_whole_prompt = args.admit_whole_prompt
        self.preempt_newest = args.preemption_mode == "lifo"
        self.speedup_ratio = args.speedup_ratio
        self.fast_forward = fast_forward
        #: inter-token gaps of every request, shared by the pool's engines
        self.token_gaps = token_gaps
        self.fpm = FpmLog(worker_id, fpm_planner_detail)
        self.view = EngineView(self)

        self.waiting: deque[Request] = deque()
        self.running: dict[int, Request] = {}  # admission order
        self.prefilling: list[Request] = []
        #: steps run so far; also the decode batch's clock: a decoding request has generated
        #: ``steps - req.decode_origin`` tokens, so a step costs O(1), not O(batch)
        self.steps = 0
        self.num_decoding = 0
        #: sum of (isl - decode_origin) over decoding requests: their contexts sum to this + num_decoding * steps
        self.decode_context_base = 0
        #: decoding requests per block phase: the step ``s`` opens a new block for those of phase s % block_size
        self.decoding_by_block_phase = [0] * self.block_size
        self._openings: _BlockOpenings | None = None  # of the batch as it is now (None: not computed yet)
        #: heap of (step that emits a decoding request's last token, request id, request)
        self._decode_ends: list[tuple[int, int, Request]] = []
        self.queued_prefill_tokens = 0
        self.pending: _Pending | None = None
        #: snapshot the waiting queue at each plan, as Dynamo's mocker computes its FPM (off: no cost)
        self.fpm_queue_snapshots = False
        self.last_pass_queue: tuple[int, int, int, int] = (0, 0, 0, 0)  # of the last completed step
        # disagg: prefilled requests holding KV here (prefill side), reserved / arrived ones (decode side)
        self.held_for_transfer: dict[int, Request] = {}
        self.incoming_transfers: dict[int, Request] = {}
        self._transferred: list[Request] = []
        # counters for the report
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
        return bool(self.running or self.waiting or self._transferred)

    def add(self, req: Request) -> None:
        """A routed request joins the waiting queue (scheduled at the next step boundary)."""
        req.phase = Phase.WAITING
        req.worker = self.id
        self.waiting.append(req)
        self.queued_prefill_tokens += req.num_tokens

    # ------------------------------------------------------------------ disagg hand-off
    def release_held(self, req: Request) -> None:
        """Prefill side: the KV transfer of ``req`` ended; free its blocks."""
        del self.held_for_transfer[req.idx]
        self.kv_cache.free(req)

    def reserve(self, req: Request) -> bool:
        """Decode side: reserve KV blocks for ``req``'s prompt before its transfer starts (the cached prefix
        here is shared, not reserved twice). False when the blocks or a sequence slot are not free now."""
        if not self.can_reserve(req):
            return False
        ok = self.kv_cache.allocate_new(req, req.isl, self.kv_cache.get_computed_blocks(req, req.isl))
        assert ok
        req.num_computed = req.isl
        req.num_tokens = req.isl + 1
        req.phase = Phase.INCOMING
        req.worker = self.id
        self.incoming_transfers[req.idx] = req
        return True

    def can_reserve(self, req: Request) -> bool:
        """Whether :meth:`reserve` would succeed now. Requests already queued here (preempted ones waiting to
        recompute, or prompts prefilled locally) go first: a hand-off does not overtake them."""
        seqs = len(self.running) + len(self.incoming_transfers) + len(self._transferred)
        if self.waiting or seqs >= self.max_num_seqs:
            return False
        kv = self.kv_cache
        return kv.can_allocate(req.isl, kv.get_computed_blocks(req, req.isl))

    def transferred(self, req: Request) -> None:
        """Decode side: ``req``'s KV has arrived; it decodes from the next step boundary."""
        del self.incoming_transfers[req.idx]
        self._transferred.append(req)

    def _join_arrived(self) -> None:
        for req in self._transferred:
            self.kv_cache.cache_blocks(req, req.isl)  # the transferred prompt is cached here too
            self.running[req.idx] = req
            self._enter_decode(req)
        self._transferred.clear()

    def plan(self, now: int) -> int | None:
        """Schedule the next step (or stretch) starting at ``now``; return its end time, or None if idle."""
        assert self.pending is None
        joined = list(self._transferred) if self._transferred else None
        if joined:
            self._join_arrived()
        end = self._plan(now)
        if joined and self.pending is not None:
            self.pending.joined = [r for r in joined if r.phase == Phase.DECODE]
        if self.fpm_queue_snapshots and self.pending is not None:
            self.pending.queue = self.waiting_queue()
        return end

    def _plan(self, now: int) -> int | None:
        if not (self.running or self.waiting):
            return None
        kv = self.kv_cache
        preempted = False
        # 1. decode tokens first: one per running decode request
        decode_blocks = self.decoding_by_block_phase[self.steps % self.block_size] if self.num_decoding else 0
        while not kv.allocate_decode_blocks(decode_blocks):
            victim = self._victim()
            if victim.phase == Phase.DECODE and self._needs_block(victim):
                decode_blocks -= 1
            self._preempt(victim, now, step_allocated=False)
            preempted = True
        budget = self.max_num_batched_tokens - self.num_decoding
        # 2. prefill chunks of running (partially prefilled) requests, in admission order
        chunks: list[tuple[Request, int]] = []
        for req in list(self.prefilling):
            if budget <= 0:
                break
            if req.phase != Phase.PREFILL:
                continue  # preempted earlier in this loop
            remaining = req.num_tokens - req.num_computed
            if not self.chunked_prefill and remaining > budget:
                break
            new = min(remaining, budget)
            while not kv.allocate_slots(req, req.num_computed + new):
                victim = self._victim()
                budget += self._preempt(victim, now, step_allocated=True, chunks=chunks)
                preempted = True
                if victim is req:
                    break
            if req.phase != Phase.PREFILL:
                break
            if self.cache_on_schedule:
                kv.cache_blocks(req, req.num_computed + new)
            chunks.append((req, new))
            budget -= new
        # 3. admissions, FCFS with head-of-line blocking, none in a step that preempted
        if not preempted:
            budget = self._admit(budget, chunks)
        # 4. timing
        if chunks:
            return self._plan_mixed(now, decode_blocks, chunks)
        if self.num_decoding == 0 and preempted:
            # every running request was preempted: admit again rather than idle with work queued
            self._admit(budget, chunks)
            if chunks:
                return self._plan_mixed(now, decode_blocks, chunks)
        if self.num_decoding == 0:
            if self.held_for_transfer or self.incoming_transfers:
                return None  # disagg: blocks are tied up by hand-offs; a transfer's end will wake us
            # cannot happen: a request that fits alone is admitted into an empty engine
            raise RuntimeError(f"engine {self.id} stalled with {len(self.waiting)} waiting requests")
        return self._plan_decode(now, self._steps_to_next_finish() if self.fast_forward and not preempted else 1)

    def _plan_decode(self, now: int, max_steps: int) -> int:
        """Plan a stretch of up to ``max_steps`` decode-only steps (1: a single step): as many as the KV blocks
        free now allow, with one vectorised perf-model call for all of them."""
        k = max_steps
        openings = None
        if max_steps > 1:
            # the steps 1..k-1 may open at most the blocks allocatable now: the stretch stops before the KV runs out
            openings = self._block_openings()
            first = self.steps + 1
            last = openings.last_step_within(openings.before(first) + self.kv_cache.num_allocatable_blocks)
            k = min(max_steps, last - first + 1)
        # the context each step reads: the batch's context now, growing by one token per request and step
        # (one np.arange: the same integers as offsets × batch + context, five times cheaper than that product)
        kv0 = self.decode_context_base + self.num_decoding * self.steps
        kv_tokens = np.arange(kv0, kv0 + k * self.num_decoding, self.num_decoding, dtype=np.int64)
        durations = to_ns(self.perf.decode_steps_s(self.num_decoding, kv_tokens), self.speedup_ratio)
        ends: list[int] = (np.add.accumulate(durations) + now).tolist()
        self.pending = _Pending(now, ends, self.steps, openings, durations)
        return ends[-1]

    def _block_openings(self) -> _BlockOpenings:
        openings = self._openings
        if openings is None:
            counts = self.decoding_by_block_phase
            openings = _BlockOpenings(self.num_decoding, self.block_size, [0, *accumulate(counts[:-1])])
            self._openings = openings
        return openings

    def _plan_mixed(self, now: int, decode_blocks: int, chunks: list[tuple[Request, int]]) -> int:
        new_tokens = [n for _, n in chunks]
        ctx = [r.num_computed for r, _ in chunks]
        kv = self.decode_context_base + self.num_decoding * self.steps
        dur = seconds_to_ns(self.perf.step_s(new_tokens, ctx, self.num_decoding, kv), self.speedup_ratio)
        attention = sum(n * (c + n // 2) for n, c in zip(new_tokens, ctx, strict=True))
        self.pending = _Pending(now, [now + dur], self.steps, None, chunks=chunks, prefill_context_tokens=sum(ctx),
                                prefill_attention=attention)
        return now + dur

    def interrupt(self, now: int) -> int | None:
        """Something new happened at ``now`` (say an arrival): end the pending stretch at the end of the
        step in progress. Returns the new end time if it moved, else None."""
        p = self.pending
        if p is None or p.k == 1:
            return None
        j = bisect_left(p.step_ends, now)  # step in progress (step_ends[j] >= now)
        if j >= p.k - 1:
            return None
        self._apply_steps(now)
        del p.step_ends[j + 1 :]
        assert p.durations is not None
        p.durations = p.durations[: j + 1]
        return p.step_ends[-1]

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
        if p.queue is not None:
            self.last_pass_queue = p.queue
        self.pending = None
        return finished

    def waiting_queue(self) -> tuple[int, int, int, int]:
        """The waiting queue as a vLLM engine's FPM publishes it (Dynamo's mocker ``compute_fpm``): fresh
        requests as queued prefill (count, prompt tokens), preempted ones as queued decode (count, prompt +
        generated tokens). Running requests, partially prefilled or not, are not queued."""
        n_p = t_p = n_d = t_d = 0
        for req in self.waiting:
            if req.preemptions:
                n_d += 1
                t_d += req.num_tokens
            else:
                n_p += 1
                t_p += req.isl
        return n_p, t_p, n_d, t_d

    # ------------------------------------------------------------------ internals
    def _needs_block(self, req: Request) -> bool:
        return req.block_phase == self.steps % self.block_size

    def _victim(self) -> Request:
        if self.preempt_newest:
            return next(reversed(self.running.values()))
        return next(iter(self.running.values()))

    def _admit(self, budget: int, chunks: list[tuple[Request, int]]) -> int:
        kv = self.kv_cache
        waiting = self.waiting
        while waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            req = waiting[0]
            hit = kv.get_computed_blocks(req, req.num_tokens - 1)
            computed = hit.num_hash_blocks * self.hash_block_tokens
            remaining = req.num_tokens - computed
            if not self.chunked_prefill and remaining > budget:
                break
            new = min(remaining, budget)
            if self.admit_whole_prompt and not kv.can_allocate(req.num_tokens, hit):
                break  # the mocker's gate: room for the whole prompt, not just this chunk
            if not kv.allocate_new(req, computed + new, hit):
                break
            waiting.popleft()
            if self.cache_on_schedule:  # a later admission in this step can hit these blocks
                kv.cache_blocks(req, computed + new)
            req.num_computed = computed
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

    def _steps_to_next_finish(self) -> int:
        """How many identical decode steps can run from now before a request finishes (at most
        :data:`MAX_STRETCH_STEPS`)."""
        heap = self._decode_ends
        while heap and _stale(heap[0]):
            heapq.heappop(heap)  # entry of a request preempted since
        k = min(MAX_STRETCH_STEPS, heap[0][0] - self.steps) if heap else MAX_STRETCH_STEPS
        return max(k, 1)

    def _apply_steps(self, now: int, record: bool = True) -> None:
        """Apply the stretch's steps that ended by ``now`` (and allocate blocks of steps started before).

        With ``record`` False (a router peeking at the engine) only the state moves; the FPM record and the
        token-gap histogram for those steps are written by the next recording call, so a stretch yields a
        few records however often it is observed."""
        p = self.pending
        assert p is not None and p.chunks is None
        ends = p.step_ends
        done = bisect_right(ends, now)
        started = min(p.k, bisect_left(ends, now) + 1)
        if started > p.allocated:
            assert p.openings is not None
            first = p.first_step
            ok = self.kv_cache.allocate_decode_blocks(p.openings.before(first + started)
                                                      - p.openings.before(first + p.allocated))
            assert ok, "stretch planned beyond KV capacity"
            p.allocated = started
        if done > p.applied:
            t_prev = p.start_ns if p.applied == 0 else ends[p.applied - 1]
            self.busy_ns += ends[done - 1] - t_prev
            if self.power is not None:  # energy of exactly these steps
                kv0 = self.decode_context_base + self.num_decoding * (p.first_step + p.applied)
                self.active_j += self.power.decode_j(self.num_decoding, kv0, t_prev, ends[p.applied : done])
            self.steps = p.first_step + done
            p.applied = done
        if not record or p.recorded >= p.applied:
            return
        a, b = p.recorded, p.applied
        n = self.num_decoding
        t0 = p.start_ns if a == 0 else ends[a - 1]
        gaps = self.token_gaps
        if a == 0 and p.joined:
            self._record_joined(p.joined, ends[0])
            gaps.add(ends[0] - t0, n - len(p.joined))
            a1 = 1
        else:
            a1 = a
        if b - a1 == 1:
            gaps.add(ends[a1] - (t0 if a1 == a else ends[a1 - 1]), n)
        elif b > a1:
            assert p.durations is not None
            gaps.add_many(p.durations[a1:b], n)
        p.recorded = b
        self.fpm.append(
            t0, ends[b - 1], b - a, 0, 0, 0, 0, n,
            self.decode_context_base + n * (p.first_step + a), self.decode_context_base + n * (p.first_step + b - 1),
            self.kv_cache.num_used_blocks, len(self.running), len(self.waiting), self.queued_prefill_tokens,
        )  # fmt: skip

    def _complete_mixed(self, p: _Pending, now: int, finished: list[Request]) -> None:
        chunks = p.chunks
        assert chunks is not None
        n = self.num_decoding
        kv = self.decode_context_base + n * self.steps
        dur = now - p.start_ns
        if p.joined:
            self._record_joined(p.joined, now)
        self.token_gaps.add(dur, n - len(p.joined or ()))
        self.steps += 1
        self.busy_ns += dur
        if self.power is not None:
            self.active_j += self.power.mixed_j(len(chunks), sum(new for _, new in chunks), p.prefill_context_tokens,
                                                p.prefill_attention, n, kv, dur)
        self._pop_finished(now, finished)
        kv_cache = self.kv_cache
        prefill_tokens = 0
        for req, new in chunks:
            prefill_tokens += new
            req.num_computed += new
            self.queued_prefill_tokens -= new
            kv_cache.cache_blocks(req, req.num_computed)  # the hash blocks this chunk completed
            if req.num_computed < req.num_tokens:
                continue
            # prefill (or recompute) done: this step samples a token
            self.prefilling.remove(req)
            req.generated += 1
            req.num_tokens += 1
            if req.first_token_ns < 0:
                req.first_token_ns = now
            else:
                self.token_gaps.add(now - req.last_token_ns, 1)  # resumed after preemption
            req.last_token_ns = now
            if req.hold_kv:  # disagg prefill: done here, KV kept for the transfer
                req.phase = Phase.HELD
                del self.running[req.idx]
                self.held_for_transfer[req.idx] = req
                finished.append(req)
            elif req.generated >= req.osl:
                self._finish(req, now, finished)
            else:
                self._enter_decode(req)
        self.fpm.append(
            p.start_ns, now, 1, len(chunks), prefill_tokens, p.prefill_context_tokens, p.prefill_attention, n, kv, kv,
            kv_cache.num_used_blocks, len(self.running), len(self.waiting), self.queued_prefill_tokens,
        )  # fmt: skip

    def _record_joined(self, joined: list[Request], second_token_ns: int) -> None:
        for r in joined:
            self.token_gaps.add(second_token_ns - r.first_token_ns, 1)

    def _enter_decode(self, req: Request) -> None:
        req.phase = Phase.DECODE
        req.decode_origin = self.steps - req.generated
        # the step s opens a new block for req iff (isl + s - decode_origin - 1) % block_size == 0
        req.block_phase = (req.decode_origin + 1 - req.isl) % self.block_size
        self.decoding_by_block_phase[req.block_phase] += 1
        self._openings = None
        self.num_decoding += 1
        self.decode_context_base += req.isl - req.decode_origin
        heapq.heappush(self._decode_ends, (req.decode_origin + req.osl, req.idx, req))

    def _leave_decode(self, req: Request, extra_blocks: int = 0) -> None:
        """``req`` leaves the decode batch: settle its token and block counts (``extra_blocks``: a block the
        current step already allocated for it)."""
        req.generated = self.steps - req.decode_origin
        self.decoding_by_block_phase[req.block_phase] -= 1
        self._openings = None
        self.num_decoding -= 1
        self.decode_context_base -= req.isl - req.decode_origin
        req.num_tokens = req.isl + req.generated
        req.num_computed = req.num_tokens - 1
        self.kv_cache.set_num_blocks(req, cdiv(req.num_computed, self.block_size) + extra_blocks)

    def _pop_finished(self, now: int, finished: list[Request]) -> None:
        heap = self._decode_ends
        while heap and heap[0][0] <= self.steps:
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
        self.kv_cache.free(req)
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
            self._leave_decode(req, 1 if (step_allocated and self._needs_block(req)) else 0)
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
        self.kv_cache.free(req, tail_first=True)  # a no-op order change unless evict_prompt_head_first
        del self.running[req.idx]
        # all its tokens must be computed again (a decoding request had none left queued)
        self.queued_prefill_tokens += req.num_tokens if req.phase == Phase.DECODE else req.num_computed
        req.num_computed = 0
        req.preemptions += 1
        req.phase = Phase.WAITING
        self.waiting.appendleft(req)
        self.preemptions += 1
        return refund


class EngineView:
    """What a router or a planner may read of an engine: what a live engine publishes (its KV cache events,
    its load, its forward-pass metrics), nothing of the scheduler's state. Read-only."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def block_size(self) -> int:
        return self._engine.block_size

    @property
    def kv_used_blocks(self) -> int:
        """KV blocks held by the engine's requests."""
        return self._engine.kv_cache.num_used_blocks

    @property
    def queued_prefill_tokens(self) -> int:
        """Prompt tokens waiting to be computed (queued or partially prefilled requests)."""
        return self._engine.queued_prefill_tokens

    def waiting_queue(self) -> tuple[int, int, int, int]:
        """The waiting queue now (:meth:`Engine.waiting_queue`)."""
        return self._engine.waiting_queue()

    def published_queue(self) -> tuple[int, int, int, int]:
        """The waiting queue as the FPM of the last completed step publishes it: computed when that step was
        scheduled (Dynamo's mocker ``execute_pass_internal`` calls ``compute_fpm`` at the pass's start), so a
        request that arrived during the step is not in it. Needs ``fpm_queue_snapshots`` on."""
        eng = self._engine
        p = eng.pending
        if p is not None and p.applied > 0 and p.queue is not None:  # a stretch with steps done
            return p.queue
        return eng.last_pass_queue

    def cached_prefix_tokens(self, keys: list[int]) -> int:
        """Tokens of the longest prefix of ``keys`` in the engine's prefix cache."""
        return self._engine.kv_cache.cached_prefix_tokens(keys)

    @property
    def fpm(self) -> FpmLog:
        """The engine's forward-pass metrics, one record per step or fast-forwarded stretch (do not modify)."""
        return self._engine.fpm
