"""What the planner observes: per-worker forward-pass metrics and per-interval traffic.

Nothing here reads engine internals: the planner sees FPM records (one per step or fast-forwarded stretch) and
the frontend's traffic counters, as a live planner would. Unlike Dynamo's, which keeps only the latest FPM per
worker, every record of the interval is used: its steps train the regression, and the interval's
time-weighted mean and peak of each load signal drive the load decisions (the mean to scale up, the peak to
scale down), which filters one-step spikes and is what stops flapping.
"""

from __future__ import annotations

import math
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


def summarize(w: Worker, rec: dict[str, Sequence[int]], window_ns: int) -> WorkerLoad | None:
    """Time-weighted load of a worker over its records of the interval (None: no step ran)."""
    if not rec["t_end_ns"]:
        return None
    # (np.add.reduce / np.maximum.reduce are what ndarray.sum / max call, without their Python wrappers: a
    # planner tick summarises every worker, a few hundred short arrays per second of simulated time)
    t0 = np.asarray(rec["t_start_ns"], dtype=np.float64)
    t1 = np.asarray(rec["t_end_ns"], dtype=np.float64)
    dur = t1 - t0
    total = float(_sum(dur))
    steps = float(_sum(np.asarray(rec["steps"], dtype=np.float64)))

    def mean_peak(name: str) -> tuple[float, float]:
        v = np.asarray(rec[name], dtype=np.float64)
        return (float(_sum(v * dur) / total) if total > 0 else float(v.mean())), float(_max(v))

    kv_first = np.asarray(rec["decode_kv_first"], dtype=np.float64)
    kv_last = np.asarray(rec["decode_kv_last"], dtype=np.float64)
    kv = (kv_first + kv_last) / 2
    qp = mean_peak("queued_prefill_tokens")
    nd = mean_peak("num_decode_requests")
    used = mean_peak("kv_used_blocks")
    prefill_tokens = float(_sum(np.asarray(rec["sum_prefill_tokens"], dtype=np.float64)))
    return WorkerLoad(
        worker=w.id, records=len(rec["t_end_ns"]), steps=int(steps),
        busy_fraction=min(1.0, total / window_ns) if window_ns > 0 else 1.0,
        queued_prefill_mean=qp[0], queued_prefill_peak=qp[1],
        decode_requests_mean=nd[0], decode_requests_peak=nd[1],
        decode_kv_mean=float(_sum(kv * dur) / total) if total > 0 else float(kv.mean()),
        decode_kv_peak=float(_max(kv_last)),
        prefill_tokens_per_step=prefill_tokens / max(steps, 1.0),
        kv_used_blocks_mean=used[0], kv_used_blocks_peak=used[1],
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
