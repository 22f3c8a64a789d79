"""``perf_model: {"kind": "table", ...}``: measured points in, interpolated step times out — the example file,
the PerfModel contract, NPZ and Dynamo profiler layouts, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmreplay.engine.config import EngineArgs
from llmreplay.engine.perf.hw import HardwareSetup, resolve_hardware
from llmreplay.engine.perf.registry import build_perf_model
from llmreplay.engine.perf.table import TableModel, load_measured_points
from llmreplay.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "measured_steps.csv"


@pytest.fixture(scope="module")
def model() -> TableModel:
    return TableModel(load_measured_points(EXAMPLE))


@pytest.fixture
def hw() -> HardwareSetup:
    return resolve_hardware(EngineArgs())


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_example_file_reproduces_its_points(model: TableModel) -> None:
    pts = model.points
    fresh = pts.prefill_context == 0
    for n, ms in zip(pts.prefill_tokens[fresh], pts.prefill_ms[fresh], strict=True):
        assert model.step_s([int(n)], [0], 0, 0) * 1e3 == pytest.approx(ms, rel=1e-12)
    for n, kv, ms in zip(pts.decode_requests, pts.decode_kv_tokens, pts.decode_ms, strict=True):
        assert float(model.decode_steps_s(int(n), np.array([int(kv)]))[0]) * 1e3 == pytest.approx(ms, rel=1e-12)
    report = model.fit_report()
    assert report["decode_max_rel_err"] < 1e-9
    # rows with cached context are fitted with one attention coefficient, not reproduced
    assert report["prefill_max_rel_err"] < 0.03
    assert "11 prefill points, 18 decode points, 6 batch sizes" in model.describe()


def test_positive_and_monotone(model: TableModel) -> None:
    tokens = [1, 16, 128, 300, 1024, 5000, 16384, 50000]
    for ctx in (0, 1000, 32768, 200000):
        steps = [model.step_s([n], [ctx], 0, 0) for n in tokens]
        assert min(steps) > 0 and np.all(np.diff(steps) >= 0)
    for ctx in (100, 1024, 5000, 16384, 100000):
        by_batch = [model.step_s([], [], b, b * ctx) for b in (1, 2, 5, 8, 20, 32, 64, 100, 128, 256, 600)]
        assert min(by_batch) > 0 and np.all(np.diff(by_batch) >= 0), (ctx, by_batch)
    for b in (1, 3, 64, 400):
        kv = model.decode_steps_s(b, np.arange(0, b * 100_000, b * 499, dtype=np.int64))
        assert np.all(kv > 0) and np.all(np.diff(kv) >= 0)
    base = model.step_s([1000], [2000], 16, 16 * 3000)
    assert base >= max(model.step_s([1000], [2000], 0, 0), model.step_s([], [], 16, 16 * 3000))
    assert model.step_s([1000, 50], [2000, 0], 16, 16 * 3000) >= base
    assert model.step_s([1000], [2000], 17, 17 * 3000) >= base
    assert model.step_s([], [], 0, 0) > 0


def test_mixed_step_counts_decodes_as_tokens_plus_their_kv_reads(model: TableModel) -> None:
    """f(prefill + n) + [g(n, KV) − g(n, 0)]: less than prefill step + decode step (weights read once)."""
    mixed = model.step_s([2048], [0], 32, 32 * 4096)
    assert mixed < model.step_s([2048], [0], 0, 0) + model.step_s([], [], 32, 32 * 4096)
    assert mixed > model.step_s([2048 + 32], [0], 0, 0)


def test_vectorised_decode_equals_the_scalar_path(model: TableModel) -> None:
    kv = np.array([0, 10, 5000, 123_456, 2_000_000], dtype=np.int64)
    assert [model.step_s([], [], 12, int(k)) for k in kv] == list(model.decode_steps_s(12, kv))


def test_registry_and_npz_give_the_same_model(tmp_path: Path, hw: HardwareSetup, model: TableModel) -> None:
    via_registry = build_perf_model({"kind": "table", "path": str(EXAMPLE)}, hw)
    assert via_registry.step_s([700], [300], 5, 9000) == model.step_s([700], [300], 5, 9000)
    rows = np.loadtxt(EXAMPLE, delimiter=",", comments="#", skiprows=6)
    cols = ("prefill_tokens", "prefill_context", "decode_requests", "decode_kv_tokens", "step_ms")
    np.savez(tmp_path / "m.npz", **{c: rows[:, i] for i, c in enumerate(cols)})
    npz = build_perf_model({"kind": "table", "path": str(tmp_path / "m.npz")}, hw)
    assert npz.step_s([700], [300], 5, 9000) == model.step_s([700], [300], 5, 9000)


def test_step_s_and_decode_context_columns(tmp_path: Path) -> None:
    f = write(tmp_path / "s.csv", "prefill_tokens,decode_requests,decode_context,step_s\n"
              "512,0,0,0.010\n2048,0,0,0.040\n0,4,1000,0.005\n0,4,3000,0.006\n0,16,1000,0.007\n")
    m = TableModel(load_measured_points(f))
    assert m.step_s([512], [0], 0, 0) == pytest.approx(0.010)
    assert float(m.decode_steps_s(4, np.array([12_000]))[0]) == pytest.approx(0.006)
    # batch 16 was measured at one context only: its time still grows with context (batch 4's KV slope)
    assert float(m.decode_steps_s(16, np.array([16 * 3000]))[0]) > 0.007


def test_dynamo_profiler_layout(tmp_path: Path) -> None:
    pre = tmp_path / "prof" / "selected_prefill_interpolation"
    dec = tmp_path / "prof" / "selected_decode_interpolation"
    pre.mkdir(parents=True)
    dec.mkdir(parents=True)
    np.savez(pre / "raw_data.npz", prefill_isl=np.array([512, 1024, 4096]), prefill_ttft=np.array([12., 22., 92.]),
             prefill_thpt_per_gpu=np.array([1., 1., 1.]))
    np.savez(dec / "raw_data.npz", x_kv_usage=np.array([0.01, 0.1, 0.02, 0.2]),
             y_context_length=np.array([1000, 1000, 4000, 4000]), z_itl=np.array([5., 9., 5.5, 12.]),
             z_thpt_per_gpu=np.array([1., 1., 1., 1.]), max_kv_tokens=np.array([400_000]))
    pts = load_measured_points(tmp_path / "prof")
    assert list(pts.decode_requests) == [4, 40, 2, 20]  # KV usage × max_kv_tokens / context
    assert any("Dynamo" in n for n in pts.notes)
    m = TableModel(pts)
    assert m.step_s([1024], [0], 0, 0) == pytest.approx(0.022)
    assert float(m.decode_steps_s(40, np.array([40_000]))[0]) == pytest.approx(0.009)
    with pytest.raises(InputError, match=r"need prefill points"):  # one file holds one half of the profile
        load_measured_points(dec / "raw_data.npz")


@pytest.mark.parametrize(("text", "pattern"), [
    ("prefill_tokens,step_ms,colour\n1,2,3\n", r"unknown column colour"),
    ("prefill_tokens,step_ms\n100,1\n", r"need prefill points .* two or more prompt sizes; found 1"),
    ("prefill_tokens,step_ms\n100,1\n200,2\n", r"need two or more decode points"),
    ("prefill_tokens,decode_requests,step_ms\n100,2,1\n", r"row 1 .* neither a prefill point"),
    ("prefill_tokens,step_ms\n100,0\n", r"step time must be > 0"),
    ("prefill_tokens,step_ms\n100,x\n", r"s\.csv:2: not a number"),
    ("prefill_tokens,step_ms\n100\n", r"s\.csv:2: 1 fields, the header has 2"),
    ("prefill_tokens\n100\n", r"no step time column"),
    ("prefill_tokens,step_ms,step_s\n100,1,1\n", r"step_ms or step_s, not both"),
    ("prefill_tokens,step_ms\n-5,1\n", r"prefill_tokens must be a number >= 0"),
    ("", r"empty file"),
])
def test_bad_files_are_clear_errors(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        load_measured_points(write(tmp_path / "s.csv", text))


def test_bad_paths(tmp_path: Path, hw: HardwareSetup) -> None:
    with pytest.raises(InputError, match=r"no such file"):
        build_perf_model({"kind": "table", "path": str(tmp_path / "nope.csv")}, hw)
    with pytest.raises(InputError, match=r"Dynamo profile_results_dir"):
        build_perf_model({"kind": "table", "path": str(tmp_path)}, hw)
    with pytest.raises(InputError, match=r"field 'path' must be a file path"):
        build_perf_model({"kind": "table", "path": 3}, hw)
    np.savez(tmp_path / "x.npz", foo=np.arange(3))
    with pytest.raises(InputError, match=r"unknown array foo"):
        build_perf_model({"kind": "table", "path": str(tmp_path / "x.npz")}, hw)
