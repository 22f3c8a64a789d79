"""Roofline perf model: calibration against AIConfigurator, monotonicity, and the vectorised decode path."""

from __future__ import annotations

import numpy as np
import pytest

from llmreplay.engine.perf.hardware import get_gpu
from llmreplay.engine.perf.hw import HardwareSetup
from llmreplay.engine.perf.models import get_model
from llmreplay.engine.perf.roofline import RooflineModel

# NVIDIA AIConfigurator's figures for vLLM on H200 SXM, TP 1 (ms): prefill of one request at ISL
# 1024/4096/8192, decode step with each request at context 2048, batch 1/16/64.
AIC_H200: dict[str, tuple[list[float], list[float]]] = {
    "nvidia/Llama-3.1-8B-Instruct-FP8": ([14.3, 58.9, 127.1], [3.61, 4.30, 6.88]),
    "Qwen/Qwen3-8B": ([22.1, 91.2, 201.7], [5.12, 6.50, 10.19]),
}
ISLS = [1024, 4096, 8192]
BATCHES = [1, 16, 64]
CASES = [
    (model, phase, x, ref)
    for model, (prefill, decode) in AIC_H200.items()
    for phase, xs, refs in (("prefill", ISLS, prefill), ("decode", BATCHES, decode))
    for x, ref in zip(xs, refs, strict=True)
]


def roofline(model: str = "meta-llama/Llama-3.1-8B-Instruct", gpu: str = "h200_sxm", tp: int = 1,
             kv: str = "auto") -> RooflineModel:
    return RooflineModel(HardwareSetup(get_gpu(gpu), get_model(model), tp, kv))


def ms(model: RooflineModel, phase: str, x: int) -> float:
    if phase == "prefill":
        return model.step_s([x], [0], 0, 0) * 1e3
    return float(model.decode_steps_s(x, np.array([x * 2048], dtype=np.int64))[0]) * 1e3


@pytest.mark.parametrize(("model", "phase", "x", "ref_ms"), CASES,
                         ids=[f"{m.split('/')[1]}-{p}-{x}" for m, p, x, _ in CASES])
def test_matches_aiconfigurator_within_30_percent(model: str, phase: str, x: int, ref_ms: float) -> None:
    ours = ms(roofline(model), phase, x)
    assert 0.7 <= ours / ref_ms <= 1.3, f"{model} {phase} {x}: ours {ours:.2f} ms vs AIC {ref_ms} ms"


def test_calibration_is_tight_overall() -> None:
    ratios = np.array([ms(roofline(m), p, x) / r for m, p, x, r in CASES])
    assert abs(np.median(ratios) - 1) < 0.05
    assert np.max(np.abs(np.log(ratios))) < np.log(1.12)


@pytest.mark.parametrize("model", ["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-30B-A3B",
                                   "meta-llama/Llama-3.1-70B-Instruct"])
def test_monotone_in_tokens_batch_and_kv(model: str) -> None:
    tp = 4 if "70B" in model else 1
    r = roofline(model, tp=tp)
    prefill = [r.step_s([n], [0], 0, 0) for n in (1, 16, 256, 1024, 4096, 8192)]
    assert np.all(np.diff(prefill) > 0)
    with_ctx = [r.step_s([512], [c], 0, 0) for c in (0, 1024, 8192, 65536)]
    assert np.all(np.diff(with_ctx) > 0)
    by_batch = [r.step_s([], [], n, n * 1000) for n in (1, 2, 8, 64, 256)]
    assert np.all(np.diff(by_batch) > 0)
    kv = r.decode_steps_s(32, np.arange(0, 2_000_000, 50_000, dtype=np.int64))
    assert np.all(np.diff(kv) > 0)
    # adding a prefill chunk or a decoding request never makes a step shorter
    base = r.step_s([256], [100], 8, 8000)
    assert r.step_s([256, 64], [100, 0], 8, 8000) > base
    assert r.step_s([256], [100], 9, 8000) > base
    assert r.step_s([256], [100], 8, 0) >= r.step_s([256], [100], 0, 0)


def test_positive_for_any_batch() -> None:
    r = roofline()
    assert r.step_s([1], [0], 0, 0) > 0
    assert r.step_s([], [], 1, 1) > 0
    assert r.step_s([], [], 0, 0) > 0  # the fixed overhead
    assert np.all(r.decode_steps_s(1, np.array([0, 1, 10], dtype=np.int64)) > 0)


@pytest.mark.parametrize(("model", "gpu", "tp"), [("meta-llama/Llama-3.1-8B-Instruct", "h200_sxm", 1),
                                                  ("Qwen/Qwen3-30B-A3B", "h100_sxm", 2),
                                                  ("nvidia/Llama-3.1-8B-Instruct-FP8", "a100_sxm", 1)])
def test_vectorised_decode_equals_scalar_step(model: str, gpu: str, tp: int) -> None:
    r = roofline(model, gpu, tp)
    kvs = np.array([0, 1, 17, 2048, 131_072, 1_000_003], dtype=np.int64)
    for n in (1, 7, 256):
        vec = r.decode_steps_s(n, kvs)
        assert vec.shape == kvs.shape and vec.dtype == np.float64
        for k, v in zip(kvs, vec, strict=True):
            one = float(r.decode_steps_s(n, np.array([k], dtype=np.int64))[0])
            scalar = r.step_s([], [], n, int(k))
            assert scalar == pytest.approx(one, rel=1e-12)
            assert v == pytest.approx(one, rel=1e-12)
        # zero-token prefill chunks are no prefill at all
        k3 = int(kvs[3])
        assert r.step_s([0], [5], n, k3) == pytest.approx(r.step_s([], [], n, k3), rel=1e-12)


def test_fp8_faster_than_bf16_prefill_and_decode() -> None:
    bf16, fp8 = roofline("meta-llama/Llama-3.1-8B-Instruct"), roofline("nvidia/Llama-3.1-8B-Instruct-FP8")
    assert fp8.step_s([4096], [0], 0, 0) < bf16.step_s([4096], [0], 0, 0)
    assert fp8.step_s([], [], 1, 2048) < bf16.step_s([], [], 1, 2048)


def test_fp8_kv_halves_kv_read_time() -> None:
    bf16, fp8 = roofline(kv="auto"), roofline(kv="fp8")
    kv = np.array([0, 1_000_000], dtype=np.int64)
    d_bf16 = np.diff(bf16.decode_steps_s(64, kv))[0]
    d_fp8 = np.diff(fp8.decode_steps_s(64, kv))[0]
    assert d_fp8 == pytest.approx(d_bf16 / 2, rel=1e-9)


def test_tp_speeds_up_and_adds_allreduce() -> None:
    one = roofline("meta-llama/Llama-3.1-70B-Instruct", "h200_sxm", 1)
    four = roofline("meta-llama/Llama-3.1-70B-Instruct", "h200_sxm", 4)
    assert four.step_s([4096], [0], 0, 0) < one.step_s([4096], [0], 0, 0) / 2.5
    assert four.step_s([], [], 8, 8 * 2048) < one.step_s([], [], 8, 8 * 2048)
    assert one.allreduce_s(100) == 0 and four.allreduce_s(100) > 0


def test_moe_streams_only_touched_experts() -> None:
    r = roofline("Qwen/Qwen3-30B-A3B")
    assert r.experts_touched(1) == pytest.approx(8)
    assert r.experts_touched(4) == pytest.approx(128 * (1 - (1 - 8 / 128) ** 4))
    assert r.experts_touched(10_000) == pytest.approx(128)
    # a batch-1 decode streams ~3B active params, not 30B: far cheaper than a dense 32B model's
    dense = roofline("Qwen/Qwen3-32B")
    assert r.step_s([], [], 1, 2048) < dense.step_s([], [], 1, 2048) / 4
    assert r.step_s([], [], 1, 2048) < r.step_s([], [], 64, 2048)


def test_describe_names_the_kind() -> None:
    assert roofline().describe().startswith("roofline")
    assert roofline().kind == "roofline"
