"""Benchmark FPMs that seed the Dynamo policy's perf model (``pre_deployment_sweeping_mode: rapid``).

Dynamo (``dynamo/replay/planner.py`` ``_generate_ais_prefill_fpms`` / ``_generate_ais_decode_fpms``) asks its
AIC session for: one prompt of ISL = 100, 100 + step, … ≤ ``max_num_batched_tokens`` with step
``(mbt − 100) // granularity``; and decode batches bs = 1, 1 + step, … ≤ ``max_num_seqs`` (step
``max_num_seqs // granularity``) at contexts 500, 2000, 4000 and 8000 while bs × context fits the KV cache.
Here the engine's own perf model answers (AIConfigurator's direct calls with ``perf_model: aic``).
"""

from __future__ import annotations

from llmreplay.engine.perf.base import PerfModel
from llmreplay.planner.dynamo.fpm import Fpm, Scheduled

CONTEXTS = (500, 2000, 4000, 8000)


def _prefill_ms(perf: PerfModel, isl: int) -> float:
    direct = getattr(perf, "direct_prefill_ms", None)
    if direct is not None:
        return float(direct(isl, 0))
    return perf.step_s([isl], [0], 0, 0) * 1000.0


def _decode_ms(perf: PerfModel, bs: int, ctx: int) -> float:
    direct = getattr(perf, "direct_decode_ms", None)
    if direct is not None:
        return float(direct(bs, ctx))
    return perf.step_s([], [], bs, bs * ctx) * 1000.0


def benchmark_fpms(perf: PerfModel, max_num_batched_tokens: int, max_num_seqs: int, max_kv_tokens: int,
                   granularity: int, speedup_ratio: float = 1.0) -> tuple[list[Fpm], list[Fpm]]:
    """(prefill FPMs, decode FPMs) at Dynamo's benchmark points."""
    prefill: list[Fpm] = []
    step = max(1, (max_num_batched_tokens - 100) // granularity)
    for isl in range(100, max_num_batched_tokens + 1, step):
        ms = _prefill_ms(perf, isl) / speedup_ratio
        if ms > 0:
            prefill.append(Fpm(wall_time=ms / 1000.0, scheduled=Scheduled(num_prefill_requests=1,
                                                                        sum_prefill_tokens=isl)))
    decode: list[Fpm] = []
    bs_step = max(1, max_num_seqs // granularity)
    for ctx in CONTEXTS:
        for bs in range(1, max_num_seqs + 1, bs_step):
            if bs * ctx > max_kv_tokens:
                break
            ms = _decode_ms(perf, bs, ctx) / speedup_ratio
            if ms > 0:
                decode.append(Fpm(wall_time=ms / 1000.0, scheduled=Scheduled(num_decode_requests=bs,
                                                                           sum_decode_kv_tokens=bs * ctx)))
    return prefill, decode
