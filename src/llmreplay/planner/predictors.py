"""Load predictors: next interval's request count, ISL and OSL from the past intervals.

All skip leading idle intervals (zeros before the first traffic), as Dynamo's do, so a quiet start does not
drag the forecast to zero; zeros after traffic has started are real and kept.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Protocol

from llmreplay.errors import InputError

PREDICTORS = ("constant", "moving_average", "kalman", "arima")


class Predictor(Protocol):
    def add(self, value: float) -> None: ...

    def predict(self) -> float | None: ...

    def fingerprint(self) -> Hashable | None:
        """What later forecasts depend on (the part of the history a forecast reads, not all of it): equal
        fingerprints forecast alike from then on. None: no such summary."""
        ...


class _Base:
    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            value = 0.0
        if not self.values and value == 0.0:
            return  # leading idle interval
        self.values.append(value)
        self._update(value)

    def _update(self, value: float) -> None:
        pass

    #: the most recent observations a forecast reads
    reads_last = 1

    def fingerprint(self) -> Hashable | None:
        return bool(self.values), tuple(v.hex() for v in self.values[-self.reads_last:])


class ConstantPredictor(_Base):
    """Next = last observed."""

    def predict(self) -> float | None:
        return self.values[-1] if self.values else None


class MovingAveragePredictor(_Base):
    """Next = mean of the last ``window`` observations."""

    def __init__(self, window: int = 5) -> None:
        super().__init__()
        self.window = window
        self.reads_last = window

    def predict(self) -> float | None:
        if not self.values:
            return None
        w = self.values[-self.window :]
        return sum(w) / len(w)


class KalmanPredictor(_Base):
    """Local-level Kalman filter (random walk plus noise): a smoothed level that follows trends with a lag
    set by the ratio of process to measurement noise. Small and dependency-free."""

    def __init__(self, q: float = 0.1, r: float = 1.0) -> None:
        super().__init__()
        self.q, self.r = q, r  # relative process / measurement noise
        self.level: float | None = None
        self.p = 1.0

    def _update(self, value: float) -> None:
        if self.level is None:
            self.level, self.p = value, 1.0
            return
        p = self.p + self.q
        k = p / (p + self.r)
        self.level = self.level + k * (value - self.level)
        self.p = (1 - k) * p

    def predict(self) -> float | None:
        return None if self.level is None else max(0.0, self.level)

    def fingerprint(self) -> Hashable | None:
        return bool(self.values), None if self.level is None else (self.level.hex(), self.p.hex())


class ArimaPredictor(_Base):
    """ARIMA(1,1,1) from statsmodels (optional extra ``llmreplay[arima]``); last value until 5 points."""

    def __init__(self) -> None:
        super().__init__()
        try:
            from statsmodels.tsa.arima.model import ARIMA  # noqa: F401
        except ImportError:
            raise InputError(
                "planner_config.load_predictor 'arima' needs statsmodels: pip install 'llmreplay[arima]' "
                "(or choose constant, moving_average or kalman)."
            ) from None

    reads_last = 50  # the fit reads the last 50 points

    def fingerprint(self) -> Hashable | None:
        # the fit reads the last 50 points; the two checks before it read the count (up to 5) and every value
        return min(len(self.values), 5), len(set(self.values)) == 1, super().fingerprint()

    def predict(self) -> float | None:
        if not self.values:
            return None
        if len(self.values) < 5 or len(set(self.values)) == 1:
            return self.values[-1]
        import warnings

        from statsmodels.tsa.arima.model import ARIMA

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = ARIMA(self.values[-50:], order=(1, 1, 1)).fit()
                return max(0.0, float(fit.forecast(1)[0]))
        except Exception:  # a numerical failure of the fit: fall back to the last value, as Dynamo does
            return self.values[-1]


def make_predictor(name: str) -> Predictor:
    if name == "constant":
        return ConstantPredictor()
    if name == "moving_average":
        return MovingAveragePredictor()
    if name == "kalman":
        return KalmanPredictor()
    if name == "arima":
        return ArimaPredictor()
    raise InputError(f"planner_config.load_predictor: unknown '{name}'; choose one of {', '.join(PREDICTORS)}.")
