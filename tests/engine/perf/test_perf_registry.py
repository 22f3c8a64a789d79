"""The perf_model registry, and the polynomial and constant models it builds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from llmreplay.engine.config import EngineArgs
from llmreplay.engine.perf.constant import ConstantModel
from llmreplay.engine.perf.hw import HardwareSetup, resolve_hardware
from llmreplay.engine.perf.polynomial import PolynomialModel
from llmreplay.engine.perf.registry import PERF_KINDS, build_perf_model
from llmreplay.engine.perf.roofline import EFF_MEM, RooflineModel
from llmreplay.errors import InputError


@pytest.fixture
def hw() -> HardwareSetup:
    return resolve_hardware(EngineArgs())


def test_default_is_roofline(hw: HardwareSetup) -> None:
    m = build_perf_model(EngineArgs().perf_model, hw)
    assert isinstance(m, RooflineModel) and m.kind == "roofline"
    assert isinstance(build_perf_model({"kind": "Roofline"}, hw), RooflineModel)


def test_roofline_overrides(hw: HardwareSetup) -> None:
    m = build_perf_model({"kind": "roofline", "step_overhead_ms": 5, "eff_mem": 0.5}, hw)
    assert isinstance(m, RooflineModel)
    assert m.params.step_overhead_ms == 5 and m.params.eff_mem == 0.5
    assert build_perf_model("roofline", hw).params.eff_mem == EFF_MEM  # type: ignore[attr-defined]
    assert m.step_s([], [], 1, 1000) > build_perf_model("roofline", hw).step_s([], [], 1, 1000)


@pytest.mark.parametrize(("spec", "pattern"), [
    ({"kind": "roofline", "eff_mem": 1.5}, r"field 'eff_mem' must be > 0 and <= 1 \(got 1.5\)"),
    ({"kind": "roofline", "eff_gemm_fp8": 0}, r"field 'eff_gemm_fp8' must be > 0"),
    ({"kind": "roofline", "step_overhead_ms": "fast"}, r"field 'step_overhead_ms' must be a number"),
    ({"kind": "roofline", "overhead": 1}, r"unknown parameter 'overhead'\. Allowed: step_overhead_ms, eff_"),
    ({"kind": "polynomial", "prefill": [1, 2]}, r"field 'prefill' must be a list of 3 numbers"),
    ({"kind": "polynomial", "decode": [1, -2, 0]}, r"field 'decode\[1\]' must be >= 0"),
    ({"kind": "polynomial", "decode": [0, 0, 1e-5]}, r"'decode': c0 or c1 must be > 0"),
    ({"kind": "polynomial", "slope": 1}, r"unknown parameter 'slope'\. Allowed: prefill, decode"),
    ({"kind": "constant"}, r"'constant' needs parameter step_ms"),
    ({"kind": "constant", "step_ms": 0}, r"field 'step_ms' must be > 0"),
    ({"kind": "constant", "step_ms": True}, r"field 'step_ms' must be a number"),
    ({"kind": "constant", "step_ms": 1, "prefill_ms_per_token": -1}, r"'prefill_ms_per_token' must be >= 0"),
    ({"kind": "vidur"}, r"unknown kind 'vidur'\. Kinds: roofline, polynomial, constant"),
    ({"step_ms": 3}, r"an object needs a 'kind'"),
    ({"kind": 3}, r"'kind' must be a string"),
    ("constant", r"'constant' needs parameter step_ms: write it as an object, e\.g\. \{\"kind\": \"const"),
    ("nonsense", r"unknown kind 'nonsense'"),
    ({"kind": "aic", "backend": "tensorflow"}, r"unknown backend 'tensorflow'"),
    ("table", r"'table' needs parameter path: write it as an object, e\.g\. \{\"kind\": \"table\""),
    ({"kind": "table", "path": "x.csv"}, r"x\.csv: no such file"),
])
def test_bad_specs_are_input_errors(hw: HardwareSetup, spec: Any, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        build_perf_model(spec, hw)


def test_registry_lists_every_kind() -> None:
    assert {"roofline", "polynomial", "constant", "aic", "table"} <= set(PERF_KINDS)
    assert all(k.unavailable is None and k.build is not None for k in PERF_KINDS.values())


# ---- polynomial -------------------------------------------------------------------------------------------
def test_polynomial_prefill_is_dynamos(hw: HardwareSetup) -> None:
    m = build_perf_model("polynomial", hw)
    assert isinstance(m, PolynomialModel)
    t = 4096
    dynamo_ms = 4.209989e-07 * t * t + 1.518344e-02 * t + 1.650142e01
    assert m.step_s([t], [0], 0, 0) == pytest.approx(dynamo_ms * 1e-3 + 5.0e-3)  # + decode c0 (mixed = sum)
    assert m.prefill_ms(0) == 0
    # chunks add up, context is ignored (as in Dynamo)
    assert m.step_s([1000, 3096], [0, 50_000], 0, 0) == pytest.approx(m.step_s([t], [0], 0, 0))


def test_polynomial_decode_uses_batch_and_kv(hw: HardwareSetup) -> None:
    m = build_perf_model({"kind": "polynomial", "decode": [2.0, 0.5, 1e-3]}, hw)
    assert isinstance(m, PolynomialModel)
    kv = np.array([0, 1000, 4000], dtype=np.int64)
    assert m.decode_steps_s(4, kv) == pytest.approx(np.array([4.0, 5.0, 8.0]) * 1e-3)
    assert m.step_s([], [], 4, 1000) == pytest.approx(5.0e-3, rel=1e-12)
    assert m.step_s([], [], 8, 1000) > m.step_s([], [], 4, 1000)
    mixed = m.step_s([100], [0], 4, 1000)
    assert mixed == pytest.approx(m.prefill_ms(100) * 1e-3 + 5.0e-3)


def test_polynomial_defaults_track_the_roofline(hw: HardwareSetup) -> None:
    poly, roof = build_perf_model("polynomial", hw), build_perf_model("roofline", hw)
    for n in (1, 16, 64, 256):
        kv = np.array([n * 2048], dtype=np.int64)
        ratio = poly.decode_steps_s(n, kv)[0] / roof.decode_steps_s(n, kv)[0]
        assert 0.85 < ratio < 1.15


# ---- constant ---------------------------------------------------------------------------------------------
def test_constant(hw: HardwareSetup) -> None:
    m = build_perf_model({"kind": "constant", "step_ms": 10}, hw)
    assert isinstance(m, ConstantModel) and m.kind == "constant"
    assert m.step_s([], [], 5, 1000) == 0.01
    assert m.step_s([500], [0], 5, 1000) == 0.01
    assert np.array_equal(m.decode_steps_s(3, np.arange(4, dtype=np.int64)), np.full(4, 0.01))
    per_tok = build_perf_model({"kind": "constant", "step_ms": 10, "prefill_ms_per_token": 0.01}, hw)
    assert per_tok.step_s([100, 100], [0, 0], 0, 0) == pytest.approx(0.012)
    assert "10 ms" in m.describe()


def test_roofline_parameters_are_documented() -> None:
    from llmreplay.engine.perf.roofline import RooflineParams

    assert list(PERF_KINDS["roofline"].params) == RooflineParams.names()
