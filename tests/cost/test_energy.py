"""Energy: the per-step power model stays between idle and max board power, energy rises with load, and the
engine's per-stretch accounting equals the step-by-step sum (fast-forward changes nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.config import RunConfig
from llmreplay.cost.power import GPU_POWER, StepPower
from llmreplay.engine.config import EngineArgs
from llmreplay.engine.perf.hw import resolve_hardware
from llmreplay.engine.perf.roofline import RooflineModel
from llmreplay.runner import run
from llmreplay.trace.synth import poisson, write_trace

from conftest import random_trace

SETUPS = [
    {"aic_system": "h100_sxm"},
    {"aic_system": "h200_sxm", "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8"},
    {"aic_system": "a100_sxm", "aic_model_path": "Qwen/Qwen3-30B-A3B", "aic_tp_size": 2},
    {"aic_system": "l40s", "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8"},
]


@pytest.mark.parametrize("engine", SETUPS)
def test_power_between_idle_and_max(engine: dict[str, object]) -> None:
    """Any step shape, at any duration (the roofline's, or one from a slower or faster perf model): each GPU
    draws between its idle and its max board power during the step."""
    hw = resolve_hardware(EngineArgs.model_validate(engine))
    meter, roof = StepPower(hw), RooflineModel(hw)
    idle, peak = meter.power.idle_w * hw.tp, meter.power.max_w * hw.tp
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 512))
        kv = int(rng.integers(n, 400_000))
        new, ctx = int(rng.integers(0, 8192)), int(rng.integers(0, 32_000))
        chunks = 1 if new else 0
        base = roof.step_s([new], [ctx], n, kv)
        for scale in (0.1, 0.5, 1.0, 3.0, 50.0):
            dur_ns = max(1, int(base * scale * 1e9))
            pairs = new * (ctx + new // 2)
            watts = idle + meter.mixed_j(chunks, new, ctx, pairs, n, kv, dur_ns) / (dur_ns * 1e-9)
            assert idle <= watts <= peak * (1 + 1e-12)
        # a stretch's step times never shrink (perf models are monotone in KV tokens)
        ends = np.cumsum(np.sort(rng.integers(1_000_000, 60_000_000, 20))).astype(np.int64)
        j = meter.decode_j(n, kv, 0, ends)
        assert 0 <= j <= (peak - idle) * ends[-1] * 1e-9 * (1 + 1e-12)


def test_step_energy_rises_with_work() -> None:
    """Roofline-timed steps: more decode requests, more KV read, or a longer prefill chunk never cost less."""
    hw = resolve_hardware(EngineArgs())
    meter, roof = StepPower(hw), RooflineModel(hw)

    def decode_j(n: int, kv: int) -> float:
        d = int(roof.decode_step_s(n, kv) * 1e9)
        return d * meter.power.idle_w * 1e-9 + meter.decode_j(n, kv, 0, np.asarray([d], dtype=np.int64))

    def prefill_j(new: int) -> float:
        d = int(roof.step_s([new], [0], 0, 0) * 1e9)
        return d * meter.power.idle_w * 1e-9 + meter.mixed_j(1, new, 0, new * new // 2, 0, 0, d)

    batches = [decode_j(n, n * 2048) for n in (1, 2, 4, 16, 64, 256)]
    assert batches == sorted(batches) and batches[-1] > batches[0]
    contexts = [decode_j(16, kv) for kv in (1_000, 10_000, 100_000, 1_000_000)]
    assert contexts == sorted(contexts) and contexts[-1] > contexts[0]
    prompts = [prefill_j(n) for n in (16, 256, 2048, 8192)]
    assert prompts == sorted(prompts) and prompts[-1] > prompts[0]


def _energy(trace_rate: float, workers: int = 2) -> dict[str, float]:
    cfg = RunConfig(trace="synthetic", num_workers=workers)
    out = run(cfg, trace=poisson(trace_rate, duration_s=60, seed=3))
    return dict(out.report["cost"])


def test_run_energy_rises_with_load_and_sits_between_idle_and_max() -> None:
    """The same fleet serving more traffic uses more energy; any run's energy lies between idle and max board
    power over its GPU-hours."""
    p = GPU_POWER["h200_sxm"]
    previous = 0.0
    for rate in (0.5, 2.0, 8.0):
        cost = _energy(rate)
        kwh, gpu_h = cost["energy_kwh"], cost["gpu_hours"]
        assert p.idle_w * gpu_h / 1e3 <= kwh <= p.max_w * gpu_h / 1e3
        assert kwh > previous
        previous = kwh


def test_fast_forward_accounts_every_step_exactly() -> None:
    """Energy is accumulated per stretch of identical decode steps; it must equal the step-by-step sum."""
    trace = random_trace(150, seed=4, rate=6.0)
    reports = [run(RunConfig(trace="t", num_workers=2, fast_forward=ff), trace=trace).report for ff in (True, False)]
    a, b = (r["cost"]["energy_kwh"] for r in reports)
    assert a == pytest.approx(b, rel=1e-9)


def test_energy_in_the_cli_report(tmp_path: Path) -> None:
    """``llmreplay run`` shows energy beside GPU-hours and writes it to the report's cost block."""
    trace = tmp_path / "t.jsonl"
    write_trace(poisson(2.0, duration_s=30, seed=1), trace)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["run", str(trace), "--num-workers", "2", "--report-json", str(report),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "Energy (kWh)" in res.output and "Energy per Output Token (J)" in res.output
    cost = json.loads(report.read_text())["cost"]
    completed = json.loads(report.read_text())["requests"]["completed"]
    assert cost["energy_kwh"] > 0
    assert cost["joules_per_output_token"] * completed > 0
    assert cost["joules_per_output_token"] == pytest.approx(cost["energy_kwh"] * 3.6e6 / _output_tokens(report))


def _output_tokens(report: Path) -> float:
    r = json.loads(report.read_text())
    tps = r["metrics"]["output_token_throughput_tps"]
    return float(tps * r["metrics"]["duration_s"])
