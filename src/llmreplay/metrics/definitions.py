"""Every metric of a run, defined once: name, unit, the columns it reads, its warm-up rule, how it is computed and
how it is shown.

This follows AIPerf's metric classes (``aiperf/metrics/types/*.py``: a ``tag``, a ``header``, a ``unit``, the
metrics it depends on and one ``_parse_record``), so the summary table, the JSON report, the per-interval series,
the CDFs, the HTML report, ``compare`` and sweeps all read the same numbers: none of them recomputes a formula.

* **Record metrics** give one value per request (NaN where the request has none) from
  :class:`~llmreplay.metrics.records.RequestRecords` columns. Their statistics (avg, min, max, p50, p90, p95, p99,
  std; numpy's linear percentiles, population std, as AIPerf's ``MetricArray``) are over the *measured*
  requests: completed, and sent at or after ``--warmup-s``.
* **Run metrics** give one value per run (throughputs, SLA attainment, goodput, hit rates, utilization).
* **Display**: each metric declares its digits once; :meth:`MetricDef.format` is the only formatter. Shares are
  shown as percentages truncated (never rounded up) to 0.1 %, so 89.97 % never reads as a met 90.0 % goal.

All times are integers in ns on the simulated clock; metrics are shown in ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.metrics.records import RequestRecords, Status
from llmreplay.units import NS_PER_MS as NS_PER_MS  # re-exported for metric code
from llmreplay.units import NS_PER_S as NS_PER_S

F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]

#: statistics of a record metric, in the JSON report's order
STAT_KEYS = ("avg", "min", "max", "p50", "p90", "p95", "p99", "std")


class Warmup(Enum):
    """Which requests a metric counts when ``--warmup-s`` is set."""

    EXCLUDED = "requests sent before --warmup-s are left out"
    INCLUDED = "every request counts"


@dataclass(frozen=True)
class MetricDef:
    """One metric: its JSON key, AIPerf tag, table header, unit and display digits, the request columns it reads,
    its warm-up rule and (for record metrics) the per-request compute function."""

    key: str
    tag: str
    header: str
    unit: str  # "ms", "tokens", "req/s", "tokens/s", "share", "s"
    digits: int
    columns: tuple[str, ...]
    warmup: Warmup
    doc: str
    compute: Callable[[RequestRecords], F64] | None = None  # record metrics only
    larger_is_better: bool = False

    def per_request(self, rec: RequestRecords) -> F64:
        """One value per request (NaN where the request has none), warm-up included."""
        if self.compute is None:
            raise TypeError(f"{self.key} is a run metric: it has no per-request values")
        return self.compute(rec)

    def format(self, value: float | int | None, with_unit: bool = False) -> str:
        """The one display rule: ``digits`` decimals with thousands separators; shares as a percentage truncated
        to ``digits`` decimals; None / NaN as an em dash."""
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "—"
        if self.unit == "share":
            return format_share(float(value), self.digits)
        text = f"{value:,.{self.digits}f}"
        return f"{text} {self.unit}" if with_unit and self.unit else text


def format_share(value: float, digits: int = 1) -> str:
    """A share as a percentage truncated (not rounded) to ``digits`` decimals: ``0.8729`` → ``87.2 %``."""
    scale = 10 ** (digits + 2)
    return f"{math.floor(value * scale + 1e-9) / 10**digits:.{digits}f} %"


# ------------------------------------------------------------------------------------------ per-request formulas
def ttft_ms(arrival_ns: Any, first_token_ns: Any) -> Any:
    """Time to first token (scalars or arrays): first token − the time the request was sent."""
    return (first_token_ns - arrival_ns) / NS_PER_MS


def request_latency_ms(arrival_ns: Any, finish_ns: Any) -> Any:
    """Request latency (scalars or arrays): last token − the time the request was sent."""
    return (finish_ns - arrival_ns) / NS_PER_MS


def itl_ms(first_token_ns: Any, finish_ns: Any, osl: Any) -> Any:
    """Inter-token latency (scalars or arrays with OSL ≥ 2): (last token − first token) / (OSL − 1). A request
    with OSL < 2 has none (AIPerf's ``InterTokenLatencyMetric`` raises ``NoMetricValue``); see
    :func:`request_itl_ms`."""
    return (finish_ns - first_token_ns) / (osl - 1) / NS_PER_MS


def request_itl_ms(first_token_ns: int, finish_ns: int, osl: int) -> float | None:
    """The ITL of one finished request, or None when it has a single output token."""
    return float(itl_ms(first_token_ns, finish_ns, osl)) if osl >= 2 else None


def _completed(rec: RequestRecords) -> BOOL:
    return np.asarray(rec.status == Status.COMPLETED, dtype=bool)


def _ttft_ms(rec: RequestRecords) -> F64:
    out = np.full(len(rec), np.nan)
    done = _completed(rec)
    out[done] = ttft_ms(rec.arrival_ns[done], rec.first_token_ns[done])
    return out


def _itl_ms(rec: RequestRecords) -> F64:
    out = np.full(len(rec), np.nan)
    ok = _completed(rec) & (rec.osl >= 2)
    out[ok] = itl_ms(rec.first_token_ns[ok], rec.finish_ns[ok], rec.osl[ok])
    return out


def _request_latency_ms(rec: RequestRecords) -> F64:
    out = np.full(len(rec), np.nan)
    done = _completed(rec)
    out[done] = request_latency_ms(rec.arrival_ns[done], rec.finish_ns[done])
    return out


def _isl(rec: RequestRecords) -> F64:
    return np.where(_completed(rec), rec.isl, np.nan).astype(np.float64)


def _osl(rec: RequestRecords) -> F64:
    return np.where(_completed(rec), rec.osl, np.nan).astype(np.float64)


# ------------------------------------------------------------------------------------------ the definitions
TTFT = MetricDef(
    "ttft_ms", "time_to_first_token", "Time to First Token", "ms", 2, ("arrival_ns", "first_token_ns", "status"),
    Warmup.EXCLUDED, "First token − the time the request was sent: queueing, prefill (and the KV hand-off in "
    "disagg when the first token is emitted on the decode side).", _ttft_ms)
ITL = MetricDef(
    "itl_ms", "inter_token_latency", "Inter Token Latency", "ms", 2,
    ("first_token_ns", "finish_ns", "osl", "status"), Warmup.EXCLUDED,
    "(last token − first token) / (OSL − 1), one value per request (statistics are across requests, as AIPerf's); "
    "requests with OSL < 2 have none.", _itl_ms)
REQUEST_LATENCY = MetricDef(
    "request_latency_ms", "request_latency", "Request Latency", "ms", 2, ("arrival_ns", "finish_ns", "status"),
    Warmup.EXCLUDED, "Last token − the time the request was sent (end to end).", _request_latency_ms)
ISL = MetricDef("isl", "input_sequence_length", "Input Sequence Length", "tokens", 2, ("isl", "status"),
                Warmup.EXCLUDED, "Prompt tokens of each measured request.", _isl)
OSL = MetricDef("osl", "output_sequence_length", "Output Sequence Length", "tokens", 2, ("osl", "status"),
                Warmup.EXCLUDED, "Output tokens of each measured request.", _osl)
INTER_CHUNK_LATENCY = MetricDef(
    "inter_chunk_latency_ms", "inter_chunk_latency", "Inter Chunk Latency", "ms", 2, (), Warmup.INCLUDED,
    "Every token gap of every request, pooled (vLLM's ITL; AIPerf's ICL), read from a log histogram the engines "
    "fill (percentiles within 0.1 %).")

#: record metrics in the summary table's row order
RECORD_METRICS = (TTFT, ITL, REQUEST_LATENCY, ISL, OSL)
#: the record metrics that have an SLA, and the SLA's key in ``Sla`` / the report's ``sla`` block
SLA_METRICS = ((TTFT, "ttft_ms"), (ITL, "itl_ms"), (REQUEST_LATENCY, "e2e_ms"))

DURATION = MetricDef("duration_s", "benchmark_duration", "Benchmark Duration", "s", 2,
                     ("arrival_ns", "finish_ns", "status"), Warmup.INCLUDED,
                     "First request sent → last request completed (AIPerf's benchmark_duration).")
REQUEST_THROUGHPUT = MetricDef("request_throughput_rps", "request_throughput", "Request Throughput", "req/s", 2,
                               ("status",), Warmup.INCLUDED, "Completed requests / duration.",
                               larger_is_better=True)
OUTPUT_TOKEN_THROUGHPUT = MetricDef("output_token_throughput_tps", "output_token_throughput",
                                    "Output Token Throughput", "tokens/s", 2, ("osl", "status"), Warmup.INCLUDED,
                                    "Output tokens of completed requests / duration.", larger_is_better=True)
SLA_ATTAINMENT = MetricDef(
    "attainment", "good_request_fraction", "SLA Attainment", "share", 1,
    ("arrival_ns", "trace_arrival_ns", "first_token_ns", "finish_ns", "osl", "status"), Warmup.EXCLUDED,
    "Requests meeting every SLA given / every request sent (completed, rejected or unfinished) at or after "
    "--warmup-s. A request is judged on the metrics it has: one with a single output token has no ITL, so it "
    "meets the SLA when its TTFT (and E2E) does. This is Dynamo's view (DynoSim: 'osl ≤ 1 skips the ITL check'); "
    "AIPerf's GoodRequestCountMetric counts such a request as not good whenever an ITL SLO is set.",
    larger_is_better=True)
GOODPUT = MetricDef("goodput_rps", "goodput", "Goodput", "req/s", 2, SLA_ATTAINMENT.columns, Warmup.EXCLUDED,
                    "Requests meeting every SLA given / duration (AIPerf's goodput: req/s, not tokens/s).",
                    larger_is_better=True)
PREFIX_HIT_RATE = MetricDef("prefix_cache_hit_rate", "prefix_cache_hit_rate", "Prefix Cache Hit Rate (tokens)",
                            "share", 1, ("cached_tokens", "isl"), Warmup.INCLUDED,
                            "Prompt tokens found in the prefix cache / prompt tokens admitted, over every "
                            "admission (a preempted request's re-admission counts again).", larger_is_better=True)
BLOCK_HIT_RATE = MetricDef("prefix_cache_block_hit_rate", "prefix_cache_block_hit_rate",
                           "Prefix Cache Hit Rate (trace blocks)", "share", 1, ("cached_tokens",), Warmup.INCLUDED,
                           "Whole trace hash blocks found cached / trace hash blocks of the admitted requests.",
                           larger_is_better=True)
UTILIZATION = MetricDef("utilization", "utilization", "Utilization", "share", 1, (), Warmup.INCLUDED,
                        "Time the pool's engines spent stepping / worker-seconds provisioned.")
GPU_HOURS = MetricDef("gpu_hours", "gpu_hours", "GPU-hours", "GPU-h", 3, (), Warmup.INCLUDED,
                      "Provisioned workers (starting + active + draining) × GPUs per worker, integrated over time "
                      "(DynoSim's definition).")

ENERGY = MetricDef("energy_kwh", "energy", "Energy", "kWh", 3, (), Warmup.INCLUDED,
                   "GPU energy of the run: each step's power model plus idle power of provisioned idle time "
                   "(llmreplay.cost.power; docs/cost-energy.md).")
ENERGY_PER_TOKEN = MetricDef("joules_per_output_token", "energy_per_output_token", "Energy per Output Token",
                             "J", 2, ("osl", "status"), Warmup.INCLUDED,
                             "Energy / output tokens of completed requests.")

RUN_METRICS = (DURATION, REQUEST_THROUGHPUT, OUTPUT_TOKEN_THROUGHPUT, SLA_ATTAINMENT, GOODPUT, PREFIX_HIT_RATE,
               BLOCK_HIT_RATE, UTILIZATION, GPU_HOURS, ENERGY, ENERGY_PER_TOKEN)
ALL_METRICS = {m.key: m for m in (*RECORD_METRICS, INTER_CHUNK_LATENCY, *RUN_METRICS)}


# ------------------------------------------------------------------------------------------ populations and SLA
def measured(rec: RequestRecords, warmup_ns: int) -> BOOL:
    """The requests a ``Warmup.EXCLUDED`` record metric counts: completed and sent at or after the warm-up."""
    return _completed(rec) & (rec.arrival_ns >= warmup_ns)


def attempted(rec: RequestRecords, warmup_ns: int) -> BOOL:
    """The attainment denominator: every request sent (or, if never sent, due) at or after the warm-up, whatever
    its end (AIPerf: good / (valid + errored))."""
    sent = np.where(rec.arrival_ns >= 0, rec.arrival_ns, rec.trace_arrival_ns)
    return np.asarray(sent >= warmup_ns, dtype=bool)


def record_values(metric: MetricDef, rec: RequestRecords, warmup_ns: int) -> F64:
    """One value per request (NaN where the request has none or the metric's warm-up rule leaves it out)."""
    v = metric.per_request(rec)
    if metric.warmup is Warmup.EXCLUDED and warmup_ns > 0:
        v = np.where(rec.arrival_ns >= warmup_ns, v, np.nan)
    return v


@dataclass(frozen=True)
class Sla:
    """The SLA a run is judged on (ms; None: not judged on that metric)."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None

    @property
    def any(self) -> bool:
        return self.ttft_ms is not None or self.itl_ms is not None or self.e2e_ms is not None

    def limit(self, key: str) -> float | None:
        value: float | None = getattr(self, key)
        return value


@dataclass
class SlaJudgement:
    """Per request: within each SLA given, within all (``good``), and the attainment population."""

    population: BOOL
    within: dict[str, BOOL]  # SLA key ("ttft_ms", "itl_ms", "e2e_ms") → within that SLA; only the SLAs given
    good: BOOL

    def share(self, mask: BOOL) -> float | None:
        n = int(self.population.sum())
        return int((mask & self.population).sum()) / n if n else None


def judge(rec: RequestRecords, sla: Sla, warmup_ns: int) -> SlaJudgement:
    """Judge every request on the SLAs given. A request that did not complete meets none; a completed request is
    judged on the metrics it has (see ``SLA_ATTAINMENT.doc``: OSL < 2 has no ITL and passes the ITL check)."""
    population = attempted(rec, warmup_ns)
    done = measured(rec, warmup_ns)
    within: dict[str, BOOL] = {}
    good = done.copy()
    for metric, key in SLA_METRICS:
        limit = sla.limit(key)
        if limit is None:
            continue
        v = record_values(metric, rec, warmup_ns)
        ok = done & (v <= limit)
        if metric is ITL:
            ok |= done & np.isnan(v)  # no ITL (OSL < 2): judged on what is defined
        within[key] = np.asarray(ok, dtype=bool)
        good &= ok
    return SlaJudgement(population, within, np.asarray(good & population, dtype=bool))


def duration_s(rec: RequestRecords) -> float:
    """AIPerf's benchmark duration: first request sent → last request completed (0 when nothing completed)."""
    released = rec.arrival_ns >= 0
    done = _completed(rec)
    first = int(rec.arrival_ns[released].min()) if released.any() else 0
    last = int(rec.finish_ns[done].max()) if done.any() else first
    return (last - first) / NS_PER_S


def per_second(count: float, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def ratio(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def block_hit_rate(rec: RequestRecords, hash_blocks: npt.NDArray[np.int64] | None, block_size: int) -> float | None:
    """``BLOCK_HIT_RATE``: ``hash_blocks`` is each request's number of trace hash blocks (None: no hashes)."""
    if hash_blocks is None:
        return None
    admitted = rec.cached_tokens >= 0
    refs = int(hash_blocks[admitted].sum())
    return ratio(float((rec.cached_tokens[admitted] // block_size).sum()), refs)
