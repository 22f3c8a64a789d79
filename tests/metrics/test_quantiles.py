"""Our linear percentiles equal numpy's to the bit (the report's statistics, time series p90s and CDFs use them)."""

from __future__ import annotations

import numpy as np
import pytest

from llmreplay.metrics.quantiles import grouped_percentile, percentiles

PERCENTS = [0, 1, 7, 25, 50, 90, 95, 99, 99.9, 100]


def _samples(rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for n in (*range(1, 12), 17, 100, 1001):
        out.append(rng.lognormal(3.0, 1.5, n))  # latencies
        out.append(rng.integers(0, 5, n).astype(np.float64))  # many ties
        out.append(rng.normal(0.0, 1e6, n))  # negatives
    out.append(np.array([1.0, np.inf, 3.0]))
    out.append(np.array([-np.inf, 2.0, 2.0, 5.0]))
    out.append(np.array([4.0, np.nan, 1.0]))  # numpy answers NaN for every percentile
    out.append(np.array([0.1 + 0.2, 0.3, 1e-300, 1e300]))
    return out


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # inf - inf: numpy warns too
def test_percentiles_equal_numpy_bit_for_bit() -> None:
    rng = np.random.default_rng(11)
    q = np.linspace(0, 100, 101)  # the report's CDF points
    for v in _samples(rng):
        for percents in (PERCENTS, q, [90]):
            ours = percentiles(v, percents)
            theirs = np.percentile(v, percents)
            assert ours.tobytes() == np.asarray(theirs, dtype=np.float64).tobytes(), (v, percents)


def test_grouped_percentile_equals_numpy_per_group() -> None:
    rng = np.random.default_rng(12)
    for n_values, n_groups in ((0, 3), (1, 1), (50, 7), (5000, 600)):
        group = rng.integers(0, n_groups, n_values).astype(np.int64)
        values = rng.lognormal(2.0, 1.0, n_values)
        values[rng.random(n_values) < 0.2] = 7.0  # ties across and within groups
        for p in (50, 90, 99):
            ours = grouped_percentile(group, values, n_groups, p)
            theirs = [float(np.percentile(values[group == g], p)) if (group == g).any() else None
                      for g in range(n_groups)]
            assert ours == theirs
            assert all(type(x) is float for x in ours if x is not None)
