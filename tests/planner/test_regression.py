"""Regression sign rules and bucketed retention."""

from __future__ import annotations

import random

import numpy as np

from llmreplay.planner.regression import (
    Regression,
    _drops_from_fullest,
    agg_regression,
    decode_regression,
    fit_linear,
)


def test_fit_recovers_linear_coefficients() -> None:
    x = np.array([[1.0, 100.0], [5.0, 300.0], [9.0, 900.0], [20.0, 400.0]])
    y = 0.002 + 1e-4 * x[:, 0] + 2e-6 * x[:, 1]
    coef = fit_linear(x, y)
    assert coef is not None
    np.testing.assert_allclose(coef, [0.002, 1e-4, 2e-6], rtol=1e-6, atol=1e-12)


def test_slightly_negative_request_coefficient_is_accepted_as_zero() -> None:
    reg = decode_regression()
    kv = np.array([1000.0, 5000.0, 9000.0, 20000.0, 40000.0])
    n = np.array([1.0, 3.0, 5.0, 9.0, 17.0])
    y = 0.003 + 2e-7 * kv - 5e-7 * n  # request coefficient -5e-7: within tolerance 1e-6
    for a, b, t in zip(n, kv, y, strict=True):
        reg.add((a, b), t)
    assert reg.fit()
    assert reg.coef is not None
    assert reg.coef[1] == 0.0
    assert reg.coef[2] > 0


def test_clearly_negative_request_coefficient_is_clamped_and_the_rest_refitted() -> None:
    x = np.array([[1.0, 1000.0], [10.0, 1000.0], [1.0, 20000.0], [10.0, 20000.0]])
    y = 0.003 + 2e-7 * x[:, 1] - 2e-5 * x[:, 0]
    coef = fit_linear(x, y, relax=0)
    assert coef is not None and coef[1] == 0.0 and coef[2] >= 0


def test_negative_kv_coefficient_rejects_the_fit_and_keeps_the_previous_one() -> None:
    reg = decode_regression()
    for n, kv in [(1, 1000), (4, 4000), (8, 9000), (16, 30000)]:
        reg.add((n, kv), 0.003 + 1e-4 * n + 1e-7 * kv)
    assert reg.fit()
    good = reg.coef.copy()  # type: ignore[union-attr]
    reg2 = decode_regression()
    for n, kv in [(1, 1000), (1, 4000), (1, 9000), (1, 30000), (2, 50000)]:
        reg2.add((n, kv), 0.01 - 1e-7 * kv + 0.001 * n)
    assert not reg2.fit()
    assert reg2.coef is None and reg2.rejected_fits == 1
    assert reg.fit() and np.allclose(reg.coef, good)  # type: ignore[arg-type]


def test_retention_keeps_range_coverage() -> None:
    reg = Regression(("x",), max_samples=16, buckets=4)
    reg.add((1000.0,), 1.0)  # one old sample at the far end of the range
    for i in range(100):
        reg.add((float(i % 10),), 0.01)
    reg.fit()
    assert reg.observations == 16 and reg.retained <= 16 + 32
    assert any(x[0] == 1000.0 for x in reg.samples)  # the lone far sample survives: its bucket is never fullest


def test_agg_regression_features() -> None:
    assert agg_regression().features == ("prefill_tokens", "decode_kv_tokens", "prefill_attention")


def test_retention_drops_what_dropping_from_the_fullest_bucket_one_at_a_time_drops() -> None:
    """The trim computes in one pass which samples go; it must be the same samples as the rule it implements:
    ``excess`` times, the oldest sample of the fullest bucket (the first of equally full ones) goes."""
    def one_at_a_time(counts: list[int], excess: int) -> list[int]:
        left, drops = list(counts), [0] * len(counts)
        for _ in range(excess):
            fullest = max(range(len(left)), key=lambda b: left[b])
            left[fullest] -= 1
            drops[fullest] += 1
        return drops

    rng = random.Random(3)
    for _ in range(3000):
        counts = [rng.randint(0, rng.choice([2, 9, 70])) for _ in range(rng.randint(1, 18))]
        if sum(counts):
            excess = rng.randint(0, sum(counts))
            assert _drops_from_fullest(counts, excess) == one_at_a_time(counts, excess), (counts, excess)


def test_trim_keeps_the_samples_the_rule_keeps() -> None:
    """End to end: a regression's retained samples after trims equal those of the rule applied literally (bucket
    every sample over the main axis's range, then drop the oldest of the fullest bucket, one at a time)."""

    def literal_trim(xs: list[tuple[float, ...]], axis_i: int, buckets: int, keep_n: int) -> list[int]:
        axis = [x[axis_i] for x in xs]
        lo, hi = min(axis), max(axis)
        width = (hi - lo) / buckets or 1.0
        members: list[list[int]] = [[] for _ in range(buckets)]
        for i, v in enumerate(axis):
            members[min(int((v - lo) / width), buckets - 1)].append(i)
        drop = {max(members, key=len).pop(0) for _ in range(len(xs) - keep_n)}
        return [i for i in range(len(xs)) if i not in drop]

    rng = random.Random(9)
    for _ in range(300):
        reg = Regression(("a", "b"), main_axis=rng.randrange(2), max_samples=rng.choice([4, 16, 64]),
                         buckets=rng.choice([1, 4, 16]))
        xs = [(rng.choice([rng.uniform(0, 1e5), 7.0]), float(rng.randint(0, 9))) for _ in range(rng.randint(1, 200))]
        for x in xs:
            reg.add(x, 0.01)
        expected = xs
        if len(xs) - reg.max_samples > 32:  # TRIM_SLACK: below it the trim waits
            expected = [xs[i] for i in literal_trim(xs, reg.main_axis, reg.buckets, reg.max_samples)]
        reg._trim()
        assert reg.samples == expected
