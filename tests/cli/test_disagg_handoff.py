"""Disagg KV hand-off time and Dynamo's ``aic_*`` names, from the command a user types.

The hand-off time of each request is its full prompt's KV bytes over the prefill worker's link plus the fixed
latency (Dynamo's default moves the whole prompt); waiting for a busy link is queueing, not transfer time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

KV_BYTES_PER_TOKEN = 131_072  # Llama-3.1-8B, BF16 KV: 32 layers × 2 (K, V) × 8 KV heads × 128 × 2 bytes


@pytest.mark.parametrize(("bandwidth", "latency_ms"), [(64.0, 0.0), (8.0, 1.5)])
def test_kv_transfer_ms_follows_the_formula_for_every_request(tmp_path: Path, bandwidth: float,
                                                                latency_ms: float) -> None:
    engine = json.dumps({"kv_transfer_bandwidth": bandwidth, "kv_transfer_latency_ms": latency_ms})
    out = tmp_path / "x.jsonl"
    res = CliRunner().invoke(app, [
        "run", "--demo", "--max-requests", "150", "--num-prefill-workers", "1", "--num-decode-workers", "1",
        "--prefill-engine-args", engine, "--decode-engine-args", engine, "--requests-out", str(out), "--quiet",
    ])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    moved = [r for r in rows if r["kv_transfer_ms"] is not None]
    # every completed request with something to decode is handed off (one output token ends at the prefill)
    assert len(moved) == sum(r["status"] == "completed" and r["osl"] > 1 for r in rows) > 100
    for r in moved:
        expected = r["isl"] * KV_BYTES_PER_TOKEN / (bandwidth * 1e9) * 1000 + latency_ms
        assert r["kv_transfer_ms"] == pytest.approx(expected, abs=1e-6), r
    assert max(r["kv_transfer_ms"] for r in moved) > latency_ms + 0.1  # the bandwidth costs time


def test_fp8_kv_halves_the_transfer(tmp_path: Path) -> None:
    """The bytes come from the resolved hardware: an FP8 KV cache moves half of BF16's."""
    times = {}
    for dtype in ("bf16", "fp8"):
        engine = json.dumps({"kv_cache_dtype": dtype, "kv_transfer_bandwidth": 16})
        out = tmp_path / f"{dtype}.jsonl"
        res = CliRunner().invoke(app, [
            "run", "--demo", "--max-requests", "20", "--prefill-engine-args", engine, "--decode-engine-args",
            engine, "--requests-out", str(out), "--quiet",
        ])
        assert res.exit_code == 0, res.output
        times[dtype] = [json.loads(line)["kv_transfer_ms"] for line in out.read_text().splitlines()]
    assert times["fp8"] == pytest.approx([t / 2 for t in times["bf16"]], abs=1e-6)


def test_dynamo_aic_names_select_aic(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dynamo user's ``aic_*`` engine args time steps with AIConfigurator, as in Dynamo; without the extra
    that is exit 2 naming both fixes, never a silent roofline."""
    import llmreplay.engine.perf.aic as aic

    monkeypatch.setattr(aic, "aic_available", lambda: False)
    res = CliRunner().invoke(app, [
        "run", "--demo", "--max-requests", "5", "--quiet",
        "--extra-engine-args", '{"aic_system": "h200_sxm", "aic_model_path": "Qwen/Qwen3-8B"}',
    ])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)
    msg = " ".join(res.output.split())
    assert "aic_system, aic_model_path" in msg
    assert "pip install 'llmreplay[aic]'" in msg
    assert '"perf_model"' in msg


@pytest.mark.parametrize(("engine", "kind"), [
    ({"gpu": "h200_sxm", "model": "Qwen/Qwen3-8B", "tp": 1}, "roofline"),
    ({"aic_system": "h200_sxm", "perf_model": "roofline"}, "roofline"),
    ({"aic_system": "h200_sxm", "perf_model": "polynomial"}, "polynomial"),
])
def test_own_names_or_an_explicit_perf_model_keep_their_model(tmp_path: Path, engine: dict[str, object],
                                                               kind: str) -> None:
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "5", "--quiet", "--extra-engine-args",
                                   json.dumps(engine), "--report-json", str(report)])
    assert res.exit_code == 0, res.output
    assert json.loads(report.read_text())["config"]["extra_engine_args"]["perf_model"] == kind


def test_dynamo_aic_names_time_with_aic_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("aiconfigurator_core")
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, [
        "run", "--demo", "--max-requests", "5", "--quiet", "--report-json", str(report), "--extra-engine-args",
        '{"aic_system": "h200_sxm", "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1}',
    ])
    assert res.exit_code == 0, res.output
    cfg = json.loads(report.read_text())["config"]
    assert cfg["extra_engine_args"]["perf_model"] == "aic"
    assert "AIC" in cfg["perf_model"]["agg"] or "aic" in cfg["perf_model"]["agg"].lower()
