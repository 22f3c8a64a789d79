"""The simulator against queueing theory: M/D/1 waiting time (Pollaczek–Khinchine) and Little's law."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FixedStep, make_trace, replay

D = 0.010  # service time: one 10 ms step per request (OSL 1, max_num_seqs 1)
N = 200_000


@pytest.mark.parametrize(("rho", "tolerance"), [(0.5, 0.05), (0.8, 0.10)])
def test_md1_mean_wait_and_littles_law(rho: float, tolerance: float) -> None:
    rng = np.random.default_rng(42)
    lam = rho / D
    arrivals = np.cumsum(rng.exponential(1 / lam, N))
    arrivals -= arrivals[0]
    tr = make_trace(arrivals.tolist(), [64] * N, [1] * N)
    res = replay(tr, FixedStep(D), max_num_seqs=1, max_num_batched_tokens=8192)
    rec = res.records
    wait = (rec.first_token_ns - rec.arrival_ns) / 1e9 - D
    expected = rho * D / (2 * (1 - rho))  # Pollaczek–Khinchine for deterministic service
    assert abs(wait.mean() - expected) / expected < tolerance, (wait.mean(), expected)
    # Little's law on a window of the simulated timeline: L = λ W, with L integrated from the event log
    t0, t1 = arrivals[N // 10], arrivals[9 * N // 10]
    t0n, t1n = int(t0 * 1e9), int(t1 * 1e9)
    a, f = rec.arrival_ns, rec.finish_ns
    in_system_ns = (np.minimum(f, t1n) - np.maximum(a, t0n)).clip(min=0).sum()
    L = in_system_ns / (t1n - t0n)
    inside = (a >= t0n) & (a < t1n)
    lam_w = inside.sum() / ((t1n - t0n) / 1e9)
    W = ((f - a)[inside]).mean() / 1e9
    assert abs(L - lam_w * W) / L < 0.02, (L, lam_w * W)
    # the server is busy a fraction ρ of the time
    busy = res.pools["agg"].workers[0].engine.busy_ns / res.horizon_ns
    assert abs(busy - rho) < 0.01
