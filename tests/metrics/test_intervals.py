"""The report's interval is chosen from the data: never below the trace's arrival quantum, centred on its steps."""

from __future__ import annotations

import numpy as np
import pytest

from llmreplay.metrics.timeseries import arrival_quantum_s, bin_width_s
from llmreplay.report.data import step_segments

S = 1_000_000_000


def test_quantum_of_a_trace_recorded_in_3_s_steps_with_rounding_noise() -> None:
    ms = np.array([0, 0, 3000, 5999, 9000, 9000, 12000, 21000, 24001])  # the Mooncake conversation pattern
    assert arrival_quantum_s(ms * 1_000_000) == 3.0


def test_continuous_arrivals_have_no_quantum() -> None:
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.exponential(0.3, 500) * S).astype(np.int64)
    assert arrival_quantum_s(t) == 0.0
    assert arrival_quantum_s(np.array([0, 5 * S])) == 0.0  # too few arrivals to tell


@pytest.mark.parametrize(("horizon", "quantum", "width"), [
    (300.0, 3.0, 3.0), (1500.0, 3.0, 6.0), (3600.0, 3.0, 12.0), (300.0, 0.0, 1.0), (3600.0, 0.0, 10.0),
    (100.0, 0.5, 0.5), (300.0, 0.5, 1.0)])
def test_interval_is_a_multiple_of_the_quantum_and_fits_400(horizon: float, quantum: float, width: float) -> None:
    w = bin_width_s(horizon, quantum)
    assert w == width and horizon / w <= 400
    if quantum:
        assert (w / quantum) == pytest.approx(round(w / quantum))


def test_empty_intervals_are_gaps_only_where_nothing_was_in_flight() -> None:
    t = np.arange(6, dtype=float)
    y = np.array([1.0, np.nan, 2.0, np.nan, np.nan, 3.0])
    active = np.array([1, 1, 1, 0, 1, 1], dtype=float)
    _, ys = step_segments(t, y, 1.0, active)
    # bin 1 had requests in flight: joined; bins 3-4 include an idle bin: one break (a NaN)
    assert int(np.isnan(ys).sum()) == 1
    _, ys0 = step_segments(t, y, 1.0)
    assert int(np.isnan(ys0).sum()) == 2
