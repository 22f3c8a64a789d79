"""Engine capacity: requests/s one engine sustains within the SLA (pure functions of a step-time model).

All times in seconds. ``step`` callables come from the planner's fitted regressions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Capacity:
    rps: float
    batch: int  # decode/agg: the batch size used; prefill: 1
    step_s: float  # the step time at that batch (prefill: time to prefill one prompt)


def prefill_time(isl: float, mbt: int, prefill_step: Callable[[float, float], float]) -> float:
    """Time to prefill one ``isl``-token prompt alone: ceil(isl / mbt) passes, never a pass above ``mbt``.
    ``prefill_step(tokens, context)`` times one pass of ``tokens`` new tokens after ``context`` cached ones."""
    if isl <= 0:
        return 0.0
    passes = math.ceil(isl / mbt)
    total = 0.0
    for j in range(passes):
        total += prefill_step(min(mbt, isl - j * mbt), j * mbt)
    return total


def prefill_capacity(isl: float, mbt: int, prefill_step: Callable[[float, float], float]) -> Capacity:
    t = prefill_time(isl, mbt, prefill_step)
    return Capacity(1.0 / t if t > 0 else math.inf, 1, t)


def decode_capacity(
    itl_s: float,
    isl: float,
    osl: float,
    kv_tokens: int,
    max_num_seqs: int,
    decode_step: Callable[[float, float], float],
) -> Capacity:
    """Largest batch whose predicted step time meets the ITL SLA, capped by KV capacity / context and
    ``max_num_seqs``; rps = batch / (OSL × step time) (Little's law)."""
    ctx = isl + osl / 2
    cap = max(1, min(int(kv_tokens // max(ctx, 1)), max_num_seqs))

    def t(b: int) -> float:
        return decode_step(b, b * ctx)

    lo, hi = 1, cap
    if t(1) > itl_s:
        hi = 1
    while lo < hi:  # largest b with t(b) <= itl (t is non-decreasing in b)
        mid = (lo + hi + 1) // 2
        if t(mid) <= itl_s:
            lo = mid
        else:
            hi = mid - 1
    step = t(lo)
    return Capacity(lo / (max(osl, 1) * step) if step > 0 else math.inf, lo, step)


def agg_capacity(
    itl_s: float,
    isl: float,
    osl: float,
    mbt: int,
    kv_tokens: int,
    max_num_seqs: int,
    agg_step: Callable[[float, float, float], float],
) -> Capacity:
    """Agg engine: the largest decode batch x in [1, min(kv_cap, seq_cap)] whose prefill admission keeps up
    with decode egress (ISL / (MBT − x) ≤ OSL), lowered while the mixed step breaks the ITL SLA.

    kv_cap = floor(KV tokens / (ISL + OSL)). The mixed step at x carries x decode requests (context
    ISL + OSL/2 each) plus min(MBT − x, ceil(x·ISL/OSL)) prefill tokens; rps = x / (OSL × t(x)).
    """
    osl = max(osl, 1.0)
    kv_cap = int(kv_tokens // max(isl + osl, 1))
    hi = max(1, min(kv_cap, max_num_seqs, mbt - 1))

    def balanced(x: int) -> bool:
        return isl / (mbt - x) <= osl

    lo = 1
    if not balanced(1):
        hi = 1
    while lo < hi:  # balanced(x) holds for all x up to a threshold
        mid = (lo + hi + 1) // 2
        if balanced(mid):
            lo = mid
        else:
            hi = mid - 1
    ctx = isl + osl / 2

    def t(x: int) -> float:
        prefill = min(mbt - x, math.ceil(x * isl / osl))
        return agg_step(prefill, x * ctx, isl)

    x = lo
    if t(x) > itl_s:  # largest x below the balance point that meets the ITL SLA
        a, b = 1, x
        if t(1) > itl_s:
            b = 1
        while a < b:
            mid = (a + b + 1) // 2
            if t(mid) <= itl_s:
                a = mid
            else:
                b = mid - 1
        x = a
    step = t(x)
    return Capacity(x / (osl * step) if step > 0 else math.inf, x, step)
