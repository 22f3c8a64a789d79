from __future__ import annotations

import pytest

from llmreplay.errors import InputError
from llmreplay.planner.predictors import (
    ConstantPredictor,
    KalmanPredictor,
    MovingAveragePredictor,
    make_predictor,
)


def test_leading_idle_intervals_are_skipped_but_later_zeros_kept() -> None:
    p = ConstantPredictor()
    for v in (0.0, 0.0, 3.0, 0.0):
        p.add(v)
    assert p.values == [3.0, 0.0]
    assert p.predict() == 0.0


def test_moving_average_and_kalman_follow_a_step() -> None:
    ma, kf = MovingAveragePredictor(window=3), KalmanPredictor()
    for v in [1.0] * 10 + [5.0] * 10:
        ma.add(v)
        kf.add(v)
    assert ma.predict() == 5.0
    k = kf.predict()
    assert k is not None and 4.0 < k <= 5.0


def test_no_data_predicts_none_and_nan_is_zero() -> None:
    p = make_predictor("constant")
    assert p.predict() is None
    p.add(2.0)
    p.add(float("nan"))
    assert p.predict() == 0.0


def test_arima_without_statsmodels_is_a_clear_error() -> None:
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match="llmreplay\\[arima\\]"):
            make_predictor("arima")
    else:
        p = make_predictor("arima")
        for v in [1, 2, 3, 4, 5, 6, 7, 8]:
            p.add(float(v))
        assert p.predict() is not None
