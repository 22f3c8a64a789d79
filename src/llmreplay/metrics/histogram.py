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
    """Weighted histogram of positive integer values (nanoseconds).

    A stretch's vector of gaps is not bucketed when it is added: vectors are held (at most
    :data:`BATCH_VECTORS` of them) and bucketed together, one numpy pass instead of a dozen numpy calls per
    stretch. The result is the same bit for bit: bucket counts are whole numbers (exact in any order), min and
    max do not depend on order, and the floating-point sum is accumulated term by term in the order of the
    adds, as if each had been added at once."""

    #: stretches held before they are bucketed together
    BATCH_VECTORS = 256

    def __init__(self) -> None:
        self._counts = np.zeros(_MAX_BUCKET, dtype=np.float64)
        self.total_weight = 0
        self._total_sum = 0.0
        self._min: float = math.inf
        self._max: float = -math.inf
        self._vectors: list[npt.NDArray[np.int64]] = []
        self._weights: list[int] = []
        #: terms of the sum in the order of the adds; ``None`` stands for the next held vector's term
        self._terms: list[float | None] = []

    @staticmethod
    def _bucket(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        idx = (np.log(values.astype(np.float64)) / _LOG_BASE).astype(np.int64)  # values >= 1 (step times)
        return np.minimum(idx, _MAX_BUCKET - 1)

    def add(self, value: int, weight: int = 1) -> None:
        if weight <= 0:
            return
        b = min(_MAX_BUCKET - 1, int(math.log(max(value, 1)) / _LOG_BASE))
        self._counts[b] += weight
        self.total_weight += weight
        self._terms.append(float(value) * weight)
        if value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        if len(self._terms) >= 8 * self.BATCH_VECTORS:
            self._flush()

    def add_many(self, values: npt.NDArray[np.int64], weight: int) -> None:
        if weight <= 0 or values.size == 0:
            return
        if values.size == 1:
            self.add(int(values[0]), weight)
            return
        self._vectors.append(values)
        self._weights.append(weight)
        self._terms.append(None)
        self.total_weight += weight * int(values.size)
        if len(self._vectors) >= self.BATCH_VECTORS:
            self._flush()

    def _flush(self) -> None:
        """Bucket the held vectors and add the held terms to the sum, in the order they were added."""
        sums: list[int] = []
        weights = self._weights
        if self._vectors:
            vectors = self._vectors
            values = np.concatenate(vectors) if len(vectors) > 1 else vectors[0]
            lengths = [int(v.shape[0]) for v in vectors]
            self._counts += np.bincount(self._bucket(values), weights=np.repeat(weights, lengths),
                                        minlength=_MAX_BUCKET)
            starts = np.zeros(len(vectors), dtype=np.int64)
            np.cumsum(lengths[:-1], out=starts[1:])
            sums = np.add.reduceat(values, starts).tolist()  # each vector's exact integer sum
            self._min = min(self._min, int(values.min()))
            self._max = max(self._max, int(values.max()))
            self._vectors, self._weights = [], []
        total = self._total_sum
        j = 0
        for term in self._terms:
            if term is None:
                term = float(sums[j]) * weights[j]
                j += 1
            total += term
        self._total_sum = total
        self._terms = []

    @property
    def counts(self) -> npt.NDArray[np.float64]:
        self._flush()
        return self._counts

    @property
    def total_sum(self) -> float:
        self._flush()
        return self._total_sum

    @property
    def min(self) -> float:
        self._flush()
        return self._min

    @property
    def max(self) -> float:
        self._flush()
        return self._max

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
