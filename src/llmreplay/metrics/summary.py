"""Run metrics, defined once (AIPerf's definitions) and read by the table, the JSON report and the HTML.

* TTFT = first token − arrival (the time the request was sent); request latency = last token − arrival.
* ITL of a request = (last token − first token) / (OSL − 1); requests with OSL < 2 have none. ITL
  statistics are over requests, as AIPerf's; the pooled per-gap distribution is ``inter_chunk_latency``.
* Percentiles: numpy's linear interpolation; std: population (ddof 0).
* Duration = first arrival → last completion; throughputs divide by it.
* Goodput = requests meeting every SLA given / duration. SLA attainment = good / (completed + rejected +
  unfinished). A request with OSL < 2 is not good when an ITL SLA is set (AIPerf; Dynamo skips the check).
* Requests arriving before ``--warmup-s`` count as requests but are left out of latency statistics,
  goodput and attainment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.metrics.histogram import LogHistogram
from llmreplay.metrics.records import RequestRecords, Status

STAT_KEYS = ("avg", "min", "max", "p50", "p90", "p95", "p99", "std")
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MetricDef:
    """One record metric: its JSON key, the AIPerf tag and the table's header."""

    key: str
    tag: str
    header: str


RECORD_METRICS = (
    MetricDef("ttft_ms", "time_to_first_token", "Time to First Token (ms)"),
    MetricDef("itl_ms", "inter_token_latency", "Inter Token Latency (ms)"),
    MetricDef("request_latency_ms", "request_latency", "Request Latency (ms)"),
    MetricDef("isl", "input_sequence_length", "Input Sequence Length (tokens)"),
    MetricDef("osl", "output_sequence_length", "Output Sequence Length (tokens)"),
)


@dataclass(frozen=True)
class Sla:
    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None

    @property
    def any(self) -> bool:
        return self.ttft_ms is not None or self.itl_ms is not None or self.e2e_ms is not None


def describe(values: F64) -> dict[str, float | None]:
    """avg/min/max/p50/p90/p95/p99/std of ``values`` (None for each when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return dict.fromkeys(STAT_KEYS)
    p50, p90, p95, p99 = np.percentile(v, [50, 90, 95, 99])
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


@dataclass
class Latencies:
    """Per-request latency columns (ms) of the completed, post-warmup requests."""

    mask: npt.NDArray[np.bool_]  # completed and not in warmup
    ttft_ms: F64
    e2e_ms: F64
    itl_ms: F64  # only requests with OSL >= 2
    itl_mask: npt.NDArray[np.bool_]  # over ``mask`` rows: which have an ITL


def latencies(rec: RequestRecords, warmup_ns: int = 0) -> Latencies:
    mask = (rec.status == Status.COMPLETED) & (rec.arrival_ns >= warmup_ns)
    first = rec.first_token_ns[mask]
    fin = rec.finish_ns[mask]
    arr = rec.arrival_ns[mask]
    osl = rec.osl[mask]
    itl_mask = osl >= 2
    itl = (fin[itl_mask] - first[itl_mask]) / (osl[itl_mask] - 1) / 1e6
    return Latencies(mask, (first - arr) / 1e6, (fin - arr) / 1e6, itl.astype(np.float64), itl_mask)


def good_mask(rec: RequestRecords, sla: Sla, warmup_ns: int = 0) -> npt.NDArray[np.bool_]:
    """Requests meeting every SLA given (all False rows for requests that did not complete)."""
    lat = latencies(rec, warmup_ns)
    ok = np.ones(int(lat.mask.sum()), dtype=bool)
    if sla.ttft_ms is not None:
        ok &= lat.ttft_ms <= sla.ttft_ms
    if sla.e2e_ms is not None:
        ok &= lat.e2e_ms <= sla.e2e_ms
    if sla.itl_ms is not None:
        itl_ok = np.zeros(ok.shape[0], dtype=bool)  # OSL < 2: no ITL, not good (AIPerf)
        itl_ok[lat.itl_mask] = lat.itl_ms <= sla.itl_ms
        ok &= itl_ok
    out = np.zeros(len(rec), dtype=bool)
    out[np.nonzero(lat.mask)[0][ok]] = True
    return out


def compute_metrics(
    rec: RequestRecords,
    icl: LogHistogram,
    prefix_hit_rate: float | None,
    warmup_ns: int = 0,
) -> dict[str, Any]:
    lat = latencies(rec, warmup_ns)
    completed = rec.status == Status.COMPLETED
    released = rec.arrival_ns >= 0
    first_arrival = int(rec.arrival_ns[released].min()) if released.any() else 0
    last_completion = int(rec.finish_ns[completed].max()) if completed.any() else first_arrival
    duration_s = (last_completion - first_arrival) / 1e9
    n_done = int(completed.sum())
    out_tokens = int(rec.osl[completed].sum())
    return {
        "ttft_ms": describe(lat.ttft_ms),
        "itl_ms": describe(lat.itl_ms),
        "request_latency_ms": describe(lat.e2e_ms),
        "isl": describe(rec.isl[lat.mask].astype(np.float64)),
        "osl": describe(rec.osl[lat.mask].astype(np.float64)),
        "inter_chunk_latency_ms": describe_histogram(icl, 1e-6),
        "request_throughput_rps": n_done / duration_s if duration_s > 0 else None,
        "output_token_throughput_tps": out_tokens / duration_s if duration_s > 0 else None,
        "prefix_cache_hit_rate": prefix_hit_rate,
        "duration_s": duration_s,
        "latency_requests": int(lat.mask.sum()),
    }


def compute_sla(rec: RequestRecords, sla: Sla, duration_s: float, warmup_ns: int = 0,
                good: npt.NDArray[np.bool_] | None = None) -> dict[str, Any]:
    """SLA block of the report; ``good`` is :func:`good_mask`'s result when the caller already has it."""
    out: dict[str, Any] = {"ttft_ms": sla.ttft_ms, "itl_ms": sla.itl_ms, "e2e_ms": sla.e2e_ms,
                           "attainment": None, "goodput_rps": None, "good_requests": None}
    if not sla.any:
        return out
    if good is None:
        good = good_mask(rec, sla, warmup_ns)
    sent = np.where(rec.arrival_ns >= 0, rec.arrival_ns, rec.trace_arrival_ns)
    population = int((sent >= warmup_ns).sum())
    n_good = int(good.sum())
    out["good_requests"] = n_good
    out["attainment"] = n_good / population if population else None
    out["goodput_rps"] = n_good / duration_s if duration_s > 0 else None
    return out
