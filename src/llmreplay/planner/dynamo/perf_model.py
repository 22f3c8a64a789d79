"""Twin of Dynamo's planner-side engine queries over the forward-pass regression.

Sources (ai-dynamo 1.6.1): ``dynamo/planner/core/perf_model/ais_adapter.py`` (``PlannerEnginePerfModel``:
next-request synthesis, prefix-cache discount, moving averages) and ``core/perf_model/engine_query.py``
(``AISCoreEnginePerfModel``: queued-prefill drain, scheduled-decode ITL, capacity sweeps).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from llmreplay.planner.dynamo.fpm import Fpm, Scheduled
from llmreplay.planner.dynamo.regression import ForwardPassRegression

MAX_KV_HIT_RATE_DISCOUNT = 0.95
MAX_CAPACITY_SEARCH_CANDIDATES = 128
U32_MAX = (1 << 32) - 1


@dataclass(frozen=True)
class EngineLimits:
    """Dynamo's ``EnginePerfLimits`` (defaults when the worker did not publish one: 8192, 512, 2,000,000)."""

    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 512
    max_kv_tokens: int = 2_000_000


@dataclass(frozen=True)
class Capacity:
    """One engine's sustainable request rate and the latency it comes with (``EngineCapacity``)."""

    rps: float
    ttft_s: float | None = None
    itl_s: float | None = None
    e2e_s: float | None = None
    eligible: bool = True


class MovingAverage:
    """Fixed window that ignores values until the first positive one (``add_after_first_nonzero``)."""

    def __init__(self, window: int) -> None:
        self.values: deque[float] = deque(maxlen=max(1, window))
        self.seen = False

    def add(self, value: float) -> None:
        if value > 0:
            self.seen = True
        if self.seen:
            self.values.append(max(0.0, value))

    @property
    def value(self) -> float:
        return sum(self.values) / len(self.values) if self.values else 0.0


def clamp_hit_rate(rate: float | None) -> float:
    if rate is None or not math.isfinite(rate):
        return 0.0
    return min(MAX_KV_HIT_RATE_DISCOUNT, max(0.0, rate))


def ceil_nonnegative(x: float) -> int:
    return 0 if x <= 0 else math.ceil(x)


class EnginePerfModel:
    """One role's perf model: regression + the queries load and throughput scaling make of it."""

    def __init__(self, role: str, limits: EngineLimits, max_observations: int = 64,
                 min_observations: int = 5) -> None:
        self.role = role  # prefill | decode | aggregated
        self.limits = limits
        self.regression = ForwardPassRegression(role, max_observations, min_observations)
        self.avg_isl = MovingAverage(max_observations)
        self.avg_decode_length = MovingAverage(max_observations)
        # engine_query._AggLoadAverages: typical prefill mixed into an aggregated ITL query
        self.avg_num_prefill = MovingAverage(max_observations)
        self.avg_prefill_tokens = MovingAverage(max_observations)

    # ------------------------------------------------------------------ observation
    def observe(self, fpms: list[Fpm]) -> None:
        """``add_observations`` / ``load_benchmark_fpms``: every FPM feeds the averages and the regression."""
        for f in fpms:
            s = f.scheduled
            self.avg_isl.add(s.sum_prefill_tokens / s.num_prefill_requests if s.num_prefill_requests > 0 else 0.0)
            if s.num_decode_requests > 0:
                self.avg_decode_length.add(s.sum_decode_kv_tokens / s.num_decode_requests)
        for f in fpms:
            self.regression.tune(f)
            s = f.scheduled
            self.avg_num_prefill.add(float(s.num_prefill_requests) if s.num_prefill_requests > 0 else 0.0)
            self.avg_prefill_tokens.add(float(s.sum_prefill_tokens))

    @property
    def ready(self) -> bool:
        return self.regression.ready

    def _pass_s(self, s: Scheduled) -> float | None:
        return self.regression.predict_s(s)

    # ------------------------------------------------------------------ load-scaling queries
    def queued_prefill_time(self, fpm: Fpm, *, kv_hit_rate: float | None, queue_scale: float = 1.0,
                            decode_scale: float = 1.0, include_queued_decode: bool = False) -> float | None:
        """Seconds to drain the queue plus one average new prompt, in ``max_num_batched_tokens`` chunks
        (``estimate_queued_prefill_time`` → ``get_queued_prefill_time``)."""
        if self.role == "decode":
            return None
        q, s = fpm.queued, fpm.scheduled
        tokens = q.sum_prefill_tokens * queue_scale
        requests = q.num_prefill_requests * queue_scale
        if self.avg_isl.value > 0:
            tokens += self.avg_isl.value
            requests += 1.0
        tokens *= 1.0 - clamp_hit_rate(kv_hit_rate)
        decode_kv = float(s.sum_decode_kv_tokens)
        decode_req = float(s.num_decode_requests)
        if include_queued_decode:
            decode_kv += q.sum_decode_kv_tokens
            decode_req += q.num_decode_requests
        queued_tokens, queued_requests = ceil_nonnegative(tokens), ceil_nonnegative(requests)
        decode_kv_i = ceil_nonnegative(decode_kv * decode_scale)
        decode_req_i = ceil_nonnegative(decode_req * decode_scale)
        mbt = self.limits.max_num_batched_tokens
        full, tail = divmod(queued_tokens, mbt)
        if full == 0 and tail == 0:
            return 0.0
        total = 0.0
        agg = self.role == "aggregated"
        for chunk, repeat in ((mbt, full), (tail, 1)):
            if repeat == 0 or chunk == 0:
                continue
            pass_ = Scheduled(
                num_prefill_requests=max(1, queued_requests),
                sum_prefill_tokens=chunk,
                var_prefill_length=q.var_prefill_length,
                num_decode_requests=decode_req_i if agg else 0,
                sum_decode_kv_tokens=decode_kv_i if agg else 0,
            )
            t = self._pass_s(pass_)
            if t is None:
                return None
            total += t * repeat
        return total

    def scheduled_decode_itl(self, fpm: Fpm, *, decode_scale: float = 1.0, include_queued_decode: bool = True,
                             include_queued_prefill_as_kv: bool = False) -> float | None:
        """Seconds of the next decode pass with one more average request (``estimate_scheduled_decode_itl``)."""
        if self.role == "prefill":
            return None
        q, s = fpm.queued, fpm.scheduled
        agg = self.role == "aggregated"
        prefill_tokens = 0.0 if agg else float(s.sum_prefill_tokens)
        prefill_requests = 0.0 if agg else float(s.num_prefill_requests)
        kv, req = float(s.sum_decode_kv_tokens), float(s.num_decode_requests)
        if include_queued_decode:
            kv += q.sum_decode_kv_tokens
            req += q.num_decode_requests
        if include_queued_prefill_as_kv:
            kv += q.sum_prefill_tokens
            req += q.num_prefill_requests
        kv *= decode_scale
        req *= decode_scale
        if self.avg_decode_length.value > 0:
            kv += self.avg_decode_length.value
            req += 1.0
        p_req, p_tok = ceil_nonnegative(prefill_requests), ceil_nonnegative(prefill_tokens)
        if agg:
            # the synthetic FPM carries no scheduled prefill: use the learned typical mix
            tokens = ceil_nonnegative(self.avg_prefill_tokens.value)
            p_req = max(ceil_nonnegative(self.avg_num_prefill.value), int(tokens > 0))
            p_tok = tokens
        pass_ = Scheduled(num_prefill_requests=p_req, sum_prefill_tokens=p_tok,
                          num_decode_requests=ceil_nonnegative(req), sum_decode_kv_tokens=ceil_nonnegative(kv))
        return self._pass_s(pass_)

    # ------------------------------------------------------------------ capacity (throughput scaling)
    def capacity(self, *, isl: float, osl: float, ttft_sla_s: float | None = None,
                 itl_sla_s: float | None = None, kv_hit_rate: float | None = None,
                 accept_length: float = 1.0) -> Capacity | None:
        """Sustainable rate of one engine for a request shape (``find_engine_capacity_rps``)."""
        if isl <= 0 or (self.role != "prefill" and osl <= 0):
            return None
        isl_i, osl_i = math.ceil(isl), max(1, math.ceil(osl))
        prefill_isl = max(1, ceil_nonnegative(isl_i * (1.0 - clamp_hit_rate(kv_hit_rate))))
        accept = accept_length if math.isfinite(accept_length) and accept_length > 1.0 else 1.0
        ctx = max(1, min(U32_MAX, isl_i + osl_i // 2))
        if self.role == "prefill":
            return self._prefill_capacity(prefill_isl, ttft_sla_s)
        if self.role == "decode":
            return self._decode_capacity(osl_i, ctx, accept, itl_sla_s)
        return self._agg_capacity(prefill_isl, osl_i, ctx, accept, ttft_sla_s, itl_sla_s)

    def _chunked_s(self, tokens: int, one_pass: Callable[[int], float | None]) -> float | None:
        mbt = self.limits.max_num_batched_tokens
        full, tail = divmod(tokens, mbt)
        total = 0.0
        for chunk, repeat in ((mbt, full), (tail, 1)):
            if repeat and chunk:
                t = one_pass(chunk)
                if t is None:
                    return None
                total += t * repeat
        return total

    def _prefill_capacity(self, isl: int, ttft_sla_s: float | None) -> Capacity | None:
        lim = self.limits
        max_batch = 1 if isl > lim.max_num_batched_tokens else min(lim.max_num_seqs,
                                                                    lim.max_num_batched_tokens // max(1, isl))
        best: Capacity | None = None
        for b in batch_sizes(max_batch):
            ttft = self._chunked_s(min(U32_MAX, isl * b), lambda c: self._pass_s(
                Scheduled(num_prefill_requests=int(c > 0), sum_prefill_tokens=c)))
            if ttft is None:
                return None
            if ttft == 0:
                continue
            best = select(best, Capacity(b / ttft, ttft_s=ttft, e2e_s=ttft, eligible=sla_ok(ttft, ttft_sla_s)))
        return best

    def _decode_max_batch(self, ctx: int) -> int:
        return min(self.limits.max_num_seqs, self.limits.max_kv_tokens // ctx) if ctx else 0

    def _decode_capacity(self, osl: int, ctx: int, accept: float, itl_sla_s: float | None) -> Capacity | None:
        best: Capacity | None = None
        for b in batch_sizes(self._decode_max_batch(ctx)):
            fwd = self._pass_s(Scheduled(num_decode_requests=b, sum_decode_kv_tokens=min(U32_MAX, b * ctx)))
            if fwd is None:
                return None
            itl = fwd / accept
            if itl == 0:
                continue
            best = select(best, Capacity(b / (osl * itl), itl_s=itl, eligible=sla_ok(itl, itl_sla_s)))
        return best

    def _agg_capacity(self, isl: int, osl: int, ctx: int, accept: float, ttft_sla_s: float | None,
                      itl_sla_s: float | None) -> Capacity | None:
        mbt = self.limits.max_num_batched_tokens
        if mbt <= 1:
            return None
        hard_cap = min(self._decode_max_batch(ctx), max(1, mbt - 1))
        best: Capacity | None = None
        for b in batch_sizes(hard_cap):
            per_iter = ceil_nonnegative(b * accept * isl / max(1, osl))
            if max(0, mbt - b) == 0 or per_iter > mbt - b:
                continue  # prefill and decode of b requests cannot balance in one token budget
            kv = min(U32_MAX, b * ctx)
            prefill = min(mbt, per_iter)

            def mixed(chunk: int, b: int = b, kv: int = kv) -> float | None:
                return self._pass_s(Scheduled(num_prefill_requests=int(chunk > 0), sum_prefill_tokens=chunk,
                                              num_decode_requests=b, sum_decode_kv_tokens=kv))

            fwd = mixed(prefill)
            if fwd is None:
                return None
            itl = fwd / accept
            if itl == 0:
                continue
            ttft = self._chunked_s(min(U32_MAX, prefill + isl), mixed)
            if ttft is None:
                return None
            e2e = ttft + itl * max(0, osl - 1)
            best = select(best, Capacity(b / (osl * itl), ttft_s=ttft, itl_s=itl, e2e_s=e2e,
                                         eligible=sla_ok(ttft, ttft_sla_s) and sla_ok(itl, itl_sla_s)))
        return best


def batch_sizes(max_batch: int) -> list[int]:
    """Batch sizes a capacity sweep tries: all up to 128, else 128 evenly spread (``_capacity_batch_sizes``)."""
    if max_batch <= 0:
        return []
    if max_batch <= MAX_CAPACITY_SEARCH_CANDIDATES:
        return list(range(1, max_batch + 1))
    span, den = max_batch - 1, MAX_CAPACITY_SEARCH_CANDIDATES - 1
    return [1 + i * span // den for i in range(MAX_CAPACITY_SEARCH_CANDIDATES)]


def sla_ok(value: float | None, sla: float | None) -> bool:
    return sla is None or (value is not None and value <= sla)


def select(current: Capacity | None, candidate: Capacity) -> Capacity:
    """Throughput target: an eligible point beats an ineligible one, then the higher rate wins."""
    if current is None or (candidate.eligible and not current.eligible):
        return candidate
    if current.eligible and not candidate.eligible:
        return current
    return candidate if candidate.rps > current.rps else current



