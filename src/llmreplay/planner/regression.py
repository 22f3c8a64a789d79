"""Perf regressions the planner fits from forward-pass metrics (FPM), as Dynamo's planner does.

* prefill: step wall time ≈ a + b·(prefill tokens in the step) + d·(prefill attention work)
* decode:  step wall time ≈ a + b·(decode requests) + c·(decode KV tokens read)
* agg:     step wall time ≈ a + b·(prefill tokens) + c·(decode KV tokens read) + d·(prefill attention work)

The attention work of a step is Σ over its prefill chunks of new × (context + new/2) tokens². Dynamo's
regressions leave it out; then one chunk of a 100k-token prompt (attention-bound, ~1 s) and one fresh 8k prompt
(~0.15 s) look alike, and the fit on real FPMs comes out with a negative intercept and a useless slope. For a
prompt of length L chunked into pieces of P tokens the mean work per chunk is P·L/2, which is what the
capacity and load estimates feed it.

Sign rules: a fit with a negative slope is rejected (the previous fit is kept), except the decode
request-count slope, which is collinear with KV tokens: a value within ``REQUEST_COEF_TOLERANCE`` of zero is
taken as zero, and a more negative one is clamped to zero and the other slopes refitted without it. The
attention-work slope (our addition) gets the same treatment, for the same reason: on fresh prompts it is
P²/2, collinear with the prefill tokens, and a perf model with no attention term (constant, polynomial) fits
it at −1e-12 by rounding alone.

Observations are kept Dynamo's way: at most ``max_samples``, spread over ``buckets`` equal-width buckets of
the main axis (prefill tokens, or KV tokens); when full, the oldest sample of the fullest bucket goes, so the
fit keeps covering the whole operating range instead of only the latest seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
REQUEST_COEF_TOLERANCE = 1e-6
TRIM_SLACK = 32  # samples allowed beyond max_samples before a trim


def fit_linear(x: F64, y: F64, relax: int | None = None) -> F64 | None:
    """Least squares ``y ≈ c0 + x @ c[1:]``. Returns None when a slope is negative, except slope ``relax``
    (0-based over the columns of ``x``): within ``REQUEST_COEF_TOLERANCE`` of zero it is taken as zero; more
    negative, it is clamped to zero and the other slopes are refitted without it."""
    return fit_design(np.column_stack([np.ones(x.shape[0]), x]), y, relax)


def fit_design(a: F64, y: F64, relax: int | None = None) -> F64 | None:
    """:func:`fit_linear` on its design matrix ``a`` = [1, x] (column 0 all ones), which a regression keeps."""
    slopes = a.shape[1] - 1
    if a.shape[0] < slopes + 1:
        return None
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    if relax is not None and coef[1 + relax] < 0:
        if coef[1 + relax] < -REQUEST_COEF_TOLERANCE:
            keep = [i for i in range(slopes) if i != relax]
            sub = fit_design(a[:, [0] + [1 + i for i in keep]], y)
            if sub is None:
                return None
            coef = np.zeros(slopes + 1)
            coef[0] = sub[0]
            for j, i in enumerate(keep):
                coef[1 + i] = sub[1 + j]
        else:
            coef[1 + relax] = 0.0
    if (coef[1:] < 0).any():
        return None
    return np.asarray(coef, dtype=np.float64)


def _drops_from_fullest(counts: list[int], excess: int) -> list[int]:
    """How many samples each bucket loses when, ``excess`` times, the fullest bucket (the first of equals) loses
    one. In closed form: the buckets are cut down to a level ``L`` (the lowest that removes at most ``excess``),
    and the rest of the removals take one more from the first buckets at that level. The same result as the
    ``excess`` passes over the buckets, for the cost of one pass over the sorted counts."""
    # The level: the lowest L >= 0 removing at most ``excess``. Between the k-th and (k+1)-th largest counts,
    # removed(L) = (sum of the k largest) − k·L; walking down from the top, the first stretch where that reaches
    # ``excess`` holds the level.
    desc = sorted(counts, reverse=True)
    top, level = 0, 0
    for k in range(1, len(desc) + 1):
        top += desc[k - 1]
        below = desc[k] if k < len(desc) else 0
        need = -((excess - top) // k)  # ceil((top − excess) / k)
        if need > below:
            level = need
            break
    extra = excess - sum(c - level for c in counts if c > level)
    drops = []
    for c in counts:
        n = max(0, c - level)
        if extra and c >= level > 0:
            n += 1
            extra -= 1
        drops.append(n)
    return drops


@dataclass
class Regression:
    """A linear step-time model over named features, refitted from retained observations."""

    features: tuple[str, ...]
    relax: int | None = None  # index of the feature whose negative slope is clamped instead of rejected
    main_axis: int = 0  # feature used for bucketed retention
    max_samples: int = 64
    buckets: int = 16
    coef: F64 | None = None
    #: the retained samples, as the fit reads them: design-matrix rows [1, x...], step times, ages (kept as
    #: arrays so a tick's fit and trim convert only the samples added since the last fit)
    _a: F64 = field(init=False, repr=False)
    _yv: F64 = field(init=False, repr=False)
    _agev: npt.NDArray[np.int64] = field(init=False, repr=False)
    #: samples added since the last fit
    _new_x: list[tuple[float, ...]] = field(default_factory=list, init=False, repr=False)
    _new_y: list[float] = field(default_factory=list, init=False, repr=False)
    _new_age: list[int] = field(default_factory=list, init=False, repr=False)
    _clock: int = 0
    rejected_fits: int = 0
    #: predictions of the current coefficients (a planner tick asks for the same points many times; numpy's dot
    #: is kept, not replaced by Python arithmetic, whose rounding differs from BLAS's fused multiply-adds)
    _memo: dict[tuple[float, ...], float] = field(default_factory=dict, init=False, repr=False, compare=False)
    _memo_coef: F64 | None = field(default=None, init=False, repr=False, compare=False)
    _intercept: float = field(default=0.0, init=False, repr=False, compare=False)
    _slopes: F64 = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._a = np.empty((0, 1 + len(self.features)))
        self._yv = np.empty(0)
        self._agev = np.empty(0, dtype=np.int64)

    @property
    def ready(self) -> bool:
        return self.coef is not None

    @property
    def retained(self) -> int:
        """Samples held (up to ``TRIM_SLACK`` beyond ``max_samples`` between trims)."""
        return int(self._yv.shape[0]) + len(self._new_y)

    @property
    def observations(self) -> int:
        return min(self.retained, self.max_samples)

    @property
    def samples(self) -> list[tuple[float, ...]]:
        """The retained samples' features, oldest first."""
        self._merge()
        return [tuple(row[1:]) for row in self._a.tolist()]

    def add(self, x: tuple[float, ...], y: float) -> None:
        if y <= 0:
            return  # an idle heartbeat, not a step
        self._clock += 1
        self._new_x.append(x)
        self._new_y.append(y)
        self._new_age.append(self._clock)

    def _merge(self) -> None:
        """Append the samples added since the last fit to the retained arrays."""
        if not self._new_y:
            return
        rows = np.empty((len(self._new_y), self._a.shape[1]))
        rows[:, 0] = 1.0
        rows[:, 1:] = self._new_x
        self._a = np.concatenate((self._a, rows))
        self._yv = np.concatenate((self._yv, self._new_y))
        self._agev = np.concatenate((self._agev, self._new_age))
        self._new_x, self._new_y, self._new_age = [], [], []

    def _trim(self) -> None:
        """Down to ``max_samples``: repeatedly drop the oldest sample of the fullest bucket (buckets span the
        main axis's current range). Runs once the set has grown by ``TRIM_SLACK`` beyond the limit, so its
        cost is shared by many fits."""
        self._merge()
        excess = self._yv.shape[0] - self.max_samples
        if excess <= TRIM_SLACK:
            return
        # (in numpy: a planner tick trims ~100 samples; the same float operations as one Python loop per sample)
        axis = self._a[:, 1 + self.main_axis]
        lo, hi = float(axis.min()), float(axis.max())
        width = (hi - lo) / self.buckets or 1.0
        bucket = np.minimum(((axis - lo) / width).astype(np.int64), self.buckets - 1)
        counts = np.bincount(bucket, minlength=self.buckets)
        drops = np.asarray(_drops_from_fullest(counts.tolist(), excess), dtype=np.int64)
        # samples grouped by bucket, in age order within each; the first drops[b] of bucket b go (its oldest)
        order = np.argsort(bucket, kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rank = np.arange(axis.shape[0]) - starts[bucket[order]]
        kept = np.ones(axis.shape[0], dtype=bool)
        kept[order[rank < drops[bucket[order]]]] = False
        self._a, self._yv, self._agev = self._a[kept], self._yv[kept], self._agev[kept]

    def fit(self) -> bool:
        """Refit; keep the previous coefficients when the new fit breaks the sign rules."""
        self._trim()
        if not self._yv.shape[0]:
            return False
        coef = fit_design(self._a, self._yv, self.relax)
        if coef is None:
            self.rejected_fits += 1
            return False
        self.coef = coef
        return True

    def predict(self, *x: float) -> float:
        coef = self.coef
        assert coef is not None
        if self._memo_coef is not coef:  # refitted (or set): forget the old predictions
            self._memo_coef, self._memo = coef, {}
            self._intercept, self._slopes = float(coef[0]), coef[1:]
        got = self._memo.get(x)
        if got is None:
            # (ndarray.dot is np.dot without the array-function dispatch; it converts the tuple as asarray did)
            got = max(0.0, self._intercept + float(self._slopes.dot(x)))
            self._memo[x] = got
        return got


def prefill_regression() -> Regression:
    return Regression(("prefill_tokens", "prefill_attention"), relax=1)


def decode_regression() -> Regression:
    return Regression(("decode_requests", "decode_kv_tokens"), relax=0, main_axis=1)


def agg_regression() -> Regression:
    return Regression(("prefill_tokens", "decode_kv_tokens", "prefill_attention"), relax=2, main_axis=0)
