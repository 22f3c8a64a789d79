"""What the planner observes: per-worker forward-pass metrics and per-interval traffic.

Nothing here reads engine internals: the planner sees FPM records (one per step or fast-forwarded stretch) and
the frontend's traffic counters, as a live planner would. Unlike Dynamo's, which keeps only the latest FPM per
worker, every record of the interval is used: its steps train the regression, and the interval's
time-weighted mean and peak of each load signal drive the load decisions (the mean to scale up, the peak to
scale down), which filters one-step spikes and is what stops flapping.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from llmreplay.cluster.worker import Worker
from llmreplay.units import NS_PER_S


@dataclass
class WorkerLoad:
    """One worker's load over the last load interval (time-weighted means and peaks of FPM signals)."""

    worker: int
    records: int
    steps: int
    busy_fraction: float
    queued_prefill_mean: float
    queued_prefill_peak: float
    decode_requests_mean: float
    decode_requests_peak: float
    decode_kv_mean: float
    decode_kv_peak: float
    prefill_tokens_per_step: float
    kv_used_blocks_mean: float
    kv_used_blocks_peak: float
    step_s_mean: float


@dataclass
class FpmCursor:
    """Where the planner stopped reading each worker's FPM log."""

    seen: dict[tuple[str, int], int]

    def __init__(self) -> None:
        self.seen = {}

    def read_all(self, w: Worker) -> bool:
        return self.seen.get((w.pool_name, w.id), 0) == len(w.view.fpm)

    def new_records(self, w: Worker) -> dict[str, Sequence[int]]:
        key = (w.pool_name, w.id)
        fpm = w.view.fpm
        records = fpm.read_since(self.seen.get(key, 0))  # the log lets go of what the planner has read
        self.seen[key] = len(fpm)
        return records


#: the FPM columns a load summary reads, as rows of one matrix; the last row, read as ``decode_kv_first``, becomes
#: the records' decode KV (the mean of their first and last step's)
_ROWS = ("t_start_ns", "t_end_ns", "steps", "sum_prefill_tokens", "decode_kv_last", "queued_prefill_tokens",
         "num_decode_requests", "kv_used_blocks", "decode_kv_first")


def summarize(w: Worker, rec: dict[str, Sequence[int]], window_ns: int) -> WorkerLoad | None:
    """Time-weighted load of a worker over its records of the interval (None: no step ran)."""
    n = len(rec["t_end_ns"])
    if not n:
        return None
    # One matrix and a few row-wise reductions, not ~25 numpy calls on short arrays: a planner tick summarises
    # every worker (~13 records each). A reduction along a row is numpy's pairwise sum of that row, the same
    # float operations as ndarray.sum of the row alone.
    buf = array("q")  # the columns end to end (a copy of each slice's buffer), then converted in one call
    for c in _ROWS:
        buf.extend(rec[c])
    m = np.frombuffer(buf, dtype=np.int64).astype(np.float64).reshape(len(_ROWS), n)
    kv = m[8]
    np.add(kv, m[4], out=kv)
    kv /= 2
    dur = m[1] - m[0]
    total = float(_sum(dur))
    steps, prefill_tokens = _sum(m[2:4], axis=1).tolist()
    signals = m[5:9]  # queued prefill tokens, decode requests, KV blocks used, decode KV tokens
    means = (_sum(signals * dur, axis=1) / total if total > 0 else _sum(signals, axis=1) / n).tolist()
    kv_last_peak, *peaks = _max(m[4:9], axis=1).tolist()
    return WorkerLoad(
        worker=w.id, records=n, steps=int(steps),
        busy_fraction=min(1.0, total / window_ns) if window_ns > 0 else 1.0,
        queued_prefill_mean=means[0], queued_prefill_peak=peaks[0],
        decode_requests_mean=means[1], decode_requests_peak=peaks[1],
        decode_kv_mean=means[3],
        decode_kv_peak=kv_last_peak,
        prefill_tokens_per_step=prefill_tokens / max(steps, 1.0),
        kv_used_blocks_mean=means[2], kv_used_blocks_peak=peaks[2],
        step_s_mean=total / NS_PER_S / max(steps, 1.0),
    )  # fmt: skip


_sum = np.add.reduce
_max = np.maximum.reduce


@dataclass
class TrafficWindow:
    """Frontend counters for one interval: requests that arrived (count, ISL, OSL) and the latency of
    requests that finished. Zero-latency requests (e.g. full cache hits) count like any other: samples are
    gated on counts, never on latency > 0."""

    arrivals: int = 0
    isl_sum: float = 0.0
    osl_sum: float = 0.0
    ttft_samples: int = 0
    ttft_sum_ms: float = 0.0
    itl_samples: int = 0
    itl_sum_ms: float = 0.0
    prompt_tokens: float = 0.0
    cached_tokens: float = 0.0
    isls: list[int] = field(default_factory=list)  # every prompt length: the queueing floor needs their tail

    def arrive(self, isl: int, osl: int) -> None:
        self.isls.append(isl)
        self.arrivals += 1
        self.isl_sum += isl
        self.osl_sum += osl

    def finish(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int) -> None:
        self.ttft_samples += 1
        self.ttft_sum_ms += ttft_ms
        if itl_ms is not None:
            self.itl_samples += 1
            self.itl_sum_ms += itl_ms
        self.prompt_tokens += isl
        self.cached_tokens += max(cached, 0)

    @property
    def mean_isl(self) -> float:
        return self.isl_sum / self.arrivals if self.arrivals else math.nan

    @property
    def mean_osl(self) -> float:
        return self.osl_sum / self.arrivals if self.arrivals else math.nan

    @property
    def mean_ttft_ms(self) -> float | None:
        return self.ttft_sum_ms / self.ttft_samples if self.ttft_samples else None

    @property
    def mean_itl_ms(self) -> float | None:
        return self.itl_sum_ms / self.itl_samples if self.itl_samples else None

    @property
    def hit_rate(self) -> float:
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0
