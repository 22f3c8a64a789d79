"""A log-bucketed histogram for the pooled token-gap distribution (AIPerf's ``inter_chunk_latency``).

A replay emits millions of token gaps; the engine adds each fast-forwarded stretch of identical-batch steps
as one weighted vector, so memory stays constant. Buckets grow by ``1 + REL`` so a percentile read from the
histogram is within ``REL/2`` (relative) of the exact value; mean, min, max and count are exact.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

REL = 0.002  # relative bucket width: percentiles within 0.1 %
_LOG_BASE = math.log1p(REL)
_MAX_BUCKET = int(math.log(1e13) / _LOG_BASE) + 2  # up to ~2.8 hours in ns


class LogHistogram:
    """Weighted histogram of positive integer values (nanoseconds)."""

    def __init__(self) -> None:
        self.counts = np.zeros(_MAX_BUCKET, dtype=np.float64)
        self.total_weight = 0
        self.total_sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @staticmethod
    def _bucket(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        idx = (np.log(values.astype(np.float64)) / _LOG_BASE).astype(np.int64)  # values >= 1 (step times)
        return np.minimum(idx, _MAX_BUCKET - 1)

    def add(self, value: int, weight: int = 1) -> None:
        if weight <= 0:
            return
        b = min(_MAX_BUCKET - 1, int(math.log(max(value, 1)) / _LOG_BASE))
        self.counts[b] += weight
        self.total_weight += weight
        self.total_sum += float(value) * weight
        self.min = min(self.min, value)
        self.max = max(self.max, value)

    def add_many(self, values: npt.NDArray[np.int64], weight: int) -> None:
        if weight <= 0 or values.size == 0:
            return
        if values.size == 1:
            self.add(int(values[0]), weight)
            return
        np.add.at(self.counts, self._bucket(values), weight)
        self.total_weight += weight * int(values.size)
        self.total_sum += float(values.sum()) * weight
        self.min = min(self.min, int(values.min()))
        self.max = max(self.max, int(values.max()))

    def mean(self) -> float:
        return self.total_sum / self.total_weight if self.total_weight else math.nan

    def percentile(self, p: float) -> float:
        """Value at percentile ``p`` (0..100): the geometric middle of the bucket holding that rank, clamped
        to the exact min/max."""
        if not self.total_weight:
            return math.nan
        cum = np.cumsum(self.counts)
        rank = p / 100.0 * self.total_weight
        b = int(np.searchsorted(cum, max(rank, 1e-9), side="left"))
        mid = math.exp((b + 0.5) * _LOG_BASE)
        return float(min(max(mid, self.min), self.max))

    def std(self) -> float:
        """Standard deviation from bucket middles (approximate, within ~REL)."""
        if not self.total_weight:
            return math.nan
        nz = np.nonzero(self.counts)[0]
        mids = np.exp((nz + 0.5) * _LOG_BASE)
        w = self.counts[nz]
        mean = self.mean()
        return float(math.sqrt(max(0.0, float((w * (mids - mean) ** 2).sum()) / self.total_weight)))
