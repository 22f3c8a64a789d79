"""Dynamo's default load predictor, ARIMA (``ARIMAPredictor`` in ``dynamo/planner/core/load/predictors.py``), on
pmdarima. pmdarima is an optional extra (``llmreplay[arima]``); these tests pin the control flow around it with a
stand-in ``pmdarima`` module, so they run on the core install too."""

from __future__ import annotations

import math
import sys
import types
from typing import Any

import pytest

from llmreplay.errors import InputError
from llmreplay.planner.dynamo import predictors


class FakeModel:
    def __init__(self, y: list[float], order: tuple[int, int, int]) -> None:
        self.y, self.order, self.updates = list(y), order, []  # type: ignore[var-annotated]

    def update(self, ys: list[float]) -> None:
        self.updates.append(list(ys))
        self.y += ys

    def predict(self, n_periods: int) -> list[float]:
        return [self.y[-1] + 1.0] * n_periods


@pytest.fixture
def fake_pmdarima(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    fits: list[Any] = []
    module = types.ModuleType("pmdarima")

    def auto_arima(y: list[float], **_: Any) -> FakeModel:
        # the raw fit collapses to (0,1,0); the log1p refit finds (1,1,0)
        model = FakeModel(y, (0, 1, 0) if not fits else (1, 1, 0))
        fits.append(model)
        return model

    module.auto_arima = auto_arima  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pmdarima", module)
    return fits


def test_arima_waits_for_five_points_and_refits_log1p_when_the_order_collapses(fake_pmdarima: list[Any]) -> None:
    p = predictors.ArimaPredictor()
    for v in (0.0, 10.0, 12.0, 11.0):  # the leading zero is skipped
        p.add(v)
    assert p.predict() == 11.0 and not fake_pmdarima  # fewer than 5 points: the last value
    p.add(13.0)
    p.add(15.0)
    first = p.predict()
    assert len(fake_pmdarima) == 2 and p.log1p  # (0,1,0) in raw → refit on log1p
    assert first == pytest.approx(math.expm1(math.log1p(15.0) + 1.0))  # forecast back from log1p space
    p.add(14.0)
    p.predict()
    assert fake_pmdarima[-1].updates  # later points update the fitted model, no refit
    assert len(fake_pmdarima) == 2


def test_arima_on_a_constant_series_is_that_constant(fake_pmdarima: list[Any]) -> None:
    p = predictors.ArimaPredictor()
    for _ in range(6):
        p.add(7.0)
    assert p.predict() == 7.0 and not fake_pmdarima


def test_arima_without_pmdarima_is_an_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pmdarima", None)
    with pytest.raises(InputError, match=r"llmreplay\[arima\]"):
        predictors.ArimaPredictor()
