"""Twin of the forward-pass regression Dynamo 1.6.1's planner learns (AISimulate core, ``fpm_regression``).

Dynamo's ``PlannerEnginePerfModel`` (``dynamo/planner/core/perf_model/ais_adapter.py``) asks
``aisimulate_core.RustForwardPassPerfModel`` in ``estimation_mode="fpm_regression"`` for every forward-pass
time. That Rust model, as its SDK docstrings state and as the cross-check in ``docs/planner.md`` confirms:

* features (weights 1): **attention** = decode KV tokens + prefill attention pairs, the pairs being
  ``(T²/2 + T·K) / n`` for ``T`` scheduled prefill tokens over ``n`` requests on ``K`` tokens of prefix;
  **FFN** = prefill tokens + decode requests;
* one store per workload kind: a prefill or decode worker has one; an aggregated worker four (pure decode,
  locally mixed, cross-rank, pure prefill), routed by what the pass scheduled; a query of a kind whose store
  is not ready has no answer (``None``);
* a store keeps at most 64 samples: when over, the oldest sample of the fullest cell of a 4 × 4 grid over
  ``log1p`` of the two features (bounds grow with the samples seen) is dropped;
* the fit is least squares with a free intercept and non-negative slopes, ready from 5 samples.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from llmreplay.planner.dynamo.fpm import Fpm, Scheduled

MAX_OBSERVATIONS = 64
MIN_OBSERVATIONS = 5
BINS_PER_AXIS = 4


def features(s: Scheduled) -> tuple[float, float]:
    """(attention, FFN) work of one scheduled pass."""
    pairs = 0.0
    if s.num_prefill_requests > 0 and s.sum_prefill_tokens > 0:
        t = float(s.sum_prefill_tokens)
        n = float(s.num_prefill_requests)
        pairs = (t * t / 2.0 + t * s.sum_prefill_kv_tokens) / n
    return float(s.sum_decode_kv_tokens) + pairs, float(s.sum_prefill_tokens + s.num_decode_requests)


def workload_kind(s: Scheduled) -> str | None:
    """Which aggregated store a pass belongs to (None: an empty pass, which costs 0 and teaches nothing)."""
    prefill = s.sum_prefill_tokens > 0
    decode = s.num_decode_requests > 0 or s.sum_decode_kv_tokens > 0
    if prefill and decode:
        return "contains_locally_mixed"
    if prefill:
        return "pure_prefill"
    if decode:
        return "pure_decode"
    return None


@dataclass
class Store:
    """One workload kind's retained samples and fit.

    Samples live in cells of the retention grid, each a FIFO; when a sample widens the bounds every sample is
    re-binned in arrival order (this reproduces most, not all, of the Rust model's choices of which sample to
    drop: see docs/planner.md).
    """

    max_observations: int = MAX_OBSERVATIONS
    min_observations: int = MIN_OBSERVATIONS
    bins: int = BINS_PER_AXIS
    cells: dict[tuple[int, int], deque[tuple[float, float, float, int]]] = field(default_factory=dict)
    lo: list[float] = field(default_factory=lambda: [math.inf, math.inf])
    hi: list[float] = field(default_factory=lambda: [-math.inf, -math.inf])
    coef: tuple[float, float, float] | None = None  # intercept, attention, ffn (seconds)
    count: int = 0
    seq: int = 0  # arrival number of the next sample
    _dirty: bool = False

    @property
    def samples(self) -> list[tuple[float, float, float, int]]:
        return [x for cell in self.cells.values() for x in cell]

    @property
    def ready(self) -> bool:
        return self.count >= self.min_observations and self._fitted() is not None

    def _cell(self, a: float, f: float) -> tuple[int, int]:
        key = []
        for i, v in enumerate((math.log1p(a), math.log1p(f))):
            lo, hi = self.lo[i], self.hi[i]
            key.append(0 if hi <= lo else max(0, min(int((v - lo) / (hi - lo) * self.bins), self.bins - 1)))
        return key[0], key[1]

    def add(self, a: float, f: float, seconds: float) -> None:
        widened = False
        for i, v in enumerate((math.log1p(a), math.log1p(f))):
            if v < self.lo[i]:
                self.lo[i], widened = v, True
            if v > self.hi[i]:
                self.hi[i], widened = v, True
        if widened and self.count:
            old = sorted(self.samples, key=lambda x: x[3])
            self.cells = {}
            for x in old:
                self.cells.setdefault(self._cell(x[0], x[1]), deque()).append(x)
        self.cells.setdefault(self._cell(a, f), deque()).append((a, f, seconds, self.seq))
        self.seq += 1
        self.count += 1
        if self.count > self.max_observations:
            most = max(len(c) for c in self.cells.values())
            fullest = min((k for k, c in self.cells.items() if len(c) == most), key=lambda k: self.cells[k][0][3])
            self.cells[fullest].popleft()
            if not self.cells[fullest]:
                del self.cells[fullest]
            self.count -= 1
        self._dirty = True

    def _fitted(self) -> tuple[float, float, float] | None:
        if self._dirty:
            self._dirty = False
            if self.count >= self.min_observations:
                fit = nonnegative_least_squares(np.asarray([x[:3] for x in self.samples], dtype=np.float64))
                if fit is not None:
                    self.coef = fit
        return self.coef

    def predict_s(self, a: float, f: float) -> float | None:
        if self.count < self.min_observations:
            return None
        coef = self._fitted()
        if coef is None:
            return None
        return max(0.0, coef[0] + coef[1] * a + coef[2] * f)


def nonnegative_least_squares(rows: np.ndarray) -> tuple[float, float, float] | None:
    """Least squares ``y ≈ c + a·x1 + b·x2`` with ``a, b ≥ 0`` and free ``c``, on standardized features.

    With two slopes the active-set solution is one of four candidates (both, either, none): the feasible one
    with the smallest residual is the constrained optimum.
    """
    x, y = rows[:, :2], rows[:, 2]
    mean, scale = x.mean(axis=0), x.std(axis=0)
    live = scale > 0
    z = np.zeros_like(x)
    z[:, live] = (x[:, live] - mean[live]) / scale[live]
    ym = float(y.mean())
    best: tuple[float, np.ndarray] | None = None
    for subset in ((0, 1), (0,), (1,), ()):
        cols = [i for i in subset if live[i]]
        if len(cols) != len(subset):
            continue
        beta = np.zeros(2)
        if cols:
            a = z[:, cols]
            gram = a.T @ a
            rhs = a.T @ (y - ym)
            try:
                sol = np.linalg.solve(gram, rhs)
            except np.linalg.LinAlgError:
                sol = np.linalg.solve(gram + 1e-9 * np.trace(gram) * np.eye(len(cols)), rhs)
            if np.any(sol < 0):
                continue
            beta[cols] = sol
        resid = float(((y - ym - z @ beta) ** 2).sum())
        if best is None or resid < best[0] - 1e-15:
            best = (resid, beta)
    if best is None:
        return None
    beta = best[1]
    # regression.rs ``fit_regression_with_ridge``: once the slopes are identifiable (more samples than varying
    # axes), a best face without a positive slope is "no usable load signal": no fit (the store keeps the
    # previous one, as the compiled model does)
    y_scale = float(y.std())
    tolerance = y_scale * 1e-10 + abs(ym) * np.finfo(np.float64).eps * 32.0
    if len(y) > int(live.sum()) and not np.any(beta > tolerance):
        return None
    slopes = np.where(live, beta / np.where(live, scale, 1.0), 0.0)
    intercept = ym - float((slopes * mean).sum())
    return intercept, float(slopes[0]), float(slopes[1])


class ForwardPassRegression:
    """The planner's forward-pass model of one role: ``prefill``, ``decode`` or ``aggregated``."""

    def __init__(self, role: str, max_observations: int = MAX_OBSERVATIONS,
                 min_observations: int = MIN_OBSERVATIONS) -> None:
        self.role = role
        self.stores: dict[str, Store] = {}
        self._max, self._min = max_observations, min_observations

    def _store_key(self, s: Scheduled) -> str | None:
        kind = workload_kind(s)
        if kind is None:
            return None
        return kind if self.role == "aggregated" else self.role

    def _store(self, key: str) -> Store:
        if key not in self.stores:
            self.stores[key] = Store(self._max, self._min)
        return self.stores[key]

    @property
    def ready(self) -> bool:
        """Dynamo's readiness: at least one store has a fit."""
        return any(s.ready for s in self.stores.values())

    @property
    def retained(self) -> int:
        return sum(s.count for s in self.stores.values())

    def tune(self, fpm: Fpm) -> None:
        if fpm.wall_time <= 0:
            return
        key = self._store_key(fpm.scheduled)
        if key is None:
            return
        a, f = features(fpm.scheduled)
        self._store(key).add(a, f, fpm.wall_time)

    def predict_s(self, s: Scheduled) -> float | None:
        """Seconds of one pass (None: this kind of pass has no ready fit)."""
        key = self._store_key(s)
        if key is None:
            return 0.0
        store = self.stores.get(key)
        if store is None:
            return None
        return store.predict_s(*features(s))
