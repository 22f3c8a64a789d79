"""Dynamo's load predictors (``dynamo/planner/core/load/predictors.py``) and the PREDICT stage that feeds them
(``BuiltinLoadPredict`` in ``plugins/builtins/local_planner.py``).

Each predictor skips leading zeros (an idle start) and maps NaN to 0. ``constant`` repeats the last value;
``arima`` (Dynamo's default) runs ``pmdarima.auto_arima`` once five points exist, then updates it, refitting on
``log1p`` when the chosen order is (0, d, 0); it needs ``pip install 'llmreplay[arima]'`` (pmdarima).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any, Protocol

from llmreplay.errors import InputError


class Predictor(Protocol):
    def add(self, value: float) -> None: ...
    def predict(self) -> float: ...
    def fingerprint(self) -> Hashable | None: ...


class ConstantPredictor:
    def __init__(self) -> None:
        self.buffer: list[float] = []
        self.seen_nonzero = False

    def add(self, value: float) -> None:
        if math.isnan(value):
            value = 0.0
        if value == 0 and not self.seen_nonzero:
            return
        if value != 0:
            self.seen_nonzero = True
        self.buffer.append(value)

    def last(self) -> float:
        return self.buffer[-1] if self.buffer else 0.0

    def predict(self) -> float:
        return self.last()

    def fingerprint(self) -> Hashable | None:
        """What later forecasts depend on: the last value (the buffer's length is never read)."""
        return self.seen_nonzero, self.last().hex()


def pmdarima_available() -> bool:
    try:
        import pmdarima  # noqa: F401
    except ImportError:
        return False
    return True


class ArimaPredictor(ConstantPredictor):
    """``ARIMAPredictor`` in raw mode (``load_predictor_log1p`` false, Dynamo's default)."""

    MIN_POINTS = 5

    def __init__(self) -> None:
        super().__init__()
        if not pmdarima_available():
            raise InputError("planner_config.load_predictor 'arima' needs pmdarima (as Dynamo): "
                             "pip install 'llmreplay[arima]', or set \"load_predictor\": \"constant\".")
        self.raw: list[float] = []
        self.pending: list[float] = []
        self.model: Any = None
        self.log1p = False

    def add(self, value: float) -> None:
        before = len(self.buffer)
        super().add(value)
        if len(self.buffer) > before:
            raw = max(0.0, float(self.buffer[-1]))
            self.raw.append(raw)
            self.pending.append(raw)

    def last(self) -> float:
        return self.raw[-1] if self.raw else 0.0

    def fingerprint(self) -> Hashable | None:
        """Before any traffic the idle zeros are skipped (nothing changes); after it every window updates the
        model, whose forecast has no fixed point to prove: None."""
        return None if self.seen_nonzero else ("arima", False)

    def predict(self) -> float:
        import pmdarima

        if len(self.raw) < self.MIN_POINTS:
            return self.last()
        if len(set(self.raw)) == 1:
            return self.raw[0]
        try:
            if self.model is None:
                self.log1p = False
                self.model = pmdarima.auto_arima(self.raw, suppress_warnings=True, error_action="ignore")
                order = getattr(self.model, "order", None)
                if order is not None and len(order) == 3 and order[0] == 0 and order[2] == 0:
                    self.model = pmdarima.auto_arima([math.log1p(v) for v in self.raw], suppress_warnings=True,
                                                     error_action="ignore")
                    self.log1p = True
            elif self.pending:
                self.model.update([math.log1p(v) for v in self.pending] if self.log1p else self.pending)
            self.pending = []
            forecast = float(self.model.predict(n_periods=1)[0])
            return max(0.0, math.expm1(forecast) if self.log1p else forecast)
        except Exception:  # Dynamo falls back to the last value on any ARIMA failure
            self.pending = []
            return self.last()


def make_predictor(name: str) -> Predictor:
    if name == "constant":
        return ConstantPredictor()
    if name == "arima":
        return ArimaPredictor()
    raise InputError(f"planner_config.load_predictor '{name}' is not available under policy 'dynamo' "
                     "(supported: constant, arima).")


class LoadPredict:
    """The PREDICT stage: request count, ISL and OSL of the next throughput interval."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.num_req, self.isl, self.osl = make_predictor(name), make_predictor(name), make_predictor(name)
        self.last_isl: float | None = None
        self.last_osl: float | None = None
        self.seen_live = False
        self.last_kv_hit_rate: float | None = None

    def observe(self, num_req: float, isl: float, osl: float, kv_hit_rate: float | None) -> None:
        self.num_req.add(num_req)
        if num_req > 0:
            self.seen_live = True
            if math.isfinite(isl):
                self.last_isl = isl
            if math.isfinite(osl):
                self.last_osl = osl
        if num_req == 0 and self.seen_live:  # an idle window keeps the last request shape
            isl = self.last_isl if self.last_isl is not None else 0.0
            osl = self.last_osl if self.last_osl is not None else 0.0
        if math.isfinite(isl):
            self.isl.add(isl)
        if math.isfinite(osl):
            self.osl.add(osl)
        if kv_hit_rate is not None and not math.isnan(kv_hit_rate):
            self.last_kv_hit_rate = kv_hit_rate

    def predict(self) -> tuple[float, float, float]:
        return self.num_req.predict(), self.isl.predict(), self.osl.predict()

    def fingerprint(self) -> Hashable | None:
        parts = (self.num_req.fingerprint(), self.isl.fingerprint(), self.osl.fingerprint())
        if any(p is None for p in parts):
            return None
        return parts, self.last_isl, self.last_osl, self.seen_live, self.last_kv_hit_rate
