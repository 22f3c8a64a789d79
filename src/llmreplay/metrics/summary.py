"""The run's ``metrics`` and ``sla`` blocks, computed from the definitions in :mod:`llmreplay.metrics.definitions`.

Nothing here defines a formula: it applies each definition to the records and summarises the values
(AIPerf's ``MetricArray.to_result``: numpy's linear percentiles, population std).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.metrics import definitions as d
from llmreplay.metrics.definitions import STAT_KEYS, Sla, SlaJudgement
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.metrics.quantiles import percentiles
from llmreplay.metrics.records import RequestRecords

F64 = npt.NDArray[np.float64]

__all__ = ["STAT_KEYS", "Sla", "compute_metrics", "compute_sla", "describe"]


def describe(values: F64) -> dict[str, float | None]:
    """avg/min/max/p50/p90/p95/p99/std of the finite ``values`` (None for each when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return dict.fromkeys(STAT_KEYS)
    p50, p90, p95, p99 = percentiles(v, [50, 90, 95, 99]).tolist()
    return {
        "avg": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "p50": float(p50),
        "p90": float(p90), "p95": float(p95), "p99": float(p99), "std": float(v.std()),
    }  # fmt: skip


def describe_histogram(h: LogHistogram, scale: float) -> dict[str, float | None]:
    if not h.total_weight:
        return dict.fromkeys(STAT_KEYS)
    return {
        "avg": h.mean() * scale, "min": h.min * scale, "max": h.max * scale,
        "p50": h.percentile(50) * scale, "p90": h.percentile(90) * scale, "p95": h.percentile(95) * scale,
        "p99": h.percentile(99) * scale, "std": h.std() * scale,
    }  # fmt: skip


def compute_metrics(rec: RequestRecords, icl: LogHistogram, prefix_hit_rate: float | None,
                    block_hit_rate: float | None, warmup_ns: int = 0) -> dict[str, Any]:
    """The ``metrics`` block: statistics of every record metric, the pooled token gaps and the run metrics."""
    out: dict[str, Any] = {m.key: describe(d.record_values(m, rec, warmup_ns)) for m in d.RECORD_METRICS}
    out[d.INTER_CHUNK_LATENCY.key] = describe_histogram(icl, 1 / d.NS_PER_MS)
    duration = d.duration_s(rec)
    done = rec.completed
    out[d.REQUEST_THROUGHPUT.key] = d.per_second(int(done.sum()), duration)
    out[d.OUTPUT_TOKEN_THROUGHPUT.key] = d.per_second(int(rec.osl[done].sum()), duration)
    out[d.PREFIX_HIT_RATE.key] = prefix_hit_rate
    out[d.BLOCK_HIT_RATE.key] = block_hit_rate
    out[d.DURATION.key] = duration
    out["latency_requests"] = int(d.measured(rec, warmup_ns).sum())
    return out


def compute_sla(sla: Sla, judgement: SlaJudgement | None, duration_s: float) -> dict[str, Any]:
    """The ``sla`` block: the SLA, attainment, goodput, and the share of requests within each SLA given (same
    denominator as attainment, so ``within_*`` ≥ attainment)."""
    out: dict[str, Any] = {"ttft_ms": sla.ttft_ms, "itl_ms": sla.itl_ms, "e2e_ms": sla.e2e_ms,
                           "attainment": None, "goodput_rps": None, "good_requests": None, "population": None,
                           "within_ttft": None, "within_itl": None, "within_e2e": None, "within_ttft_and_itl": None}
    if judgement is None or not sla.any:
        return out
    n_good = int(judgement.good.sum())
    out["good_requests"] = n_good
    out["population"] = int(judgement.population.sum())
    out[d.SLA_ATTAINMENT.key] = judgement.share(judgement.good)
    out[d.GOODPUT.key] = d.per_second(n_good, duration_s)
    for key, mask in judgement.within.items():
        out["within_" + key.split("_")[0]] = judgement.share(mask)
    if "ttft_ms" in judgement.within and "itl_ms" in judgement.within:
        out["within_ttft_and_itl"] = judgement.share(judgement.within["ttft_ms"] & judgement.within["itl_ms"])
    return out
