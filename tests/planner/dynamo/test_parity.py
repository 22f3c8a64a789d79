"""Open-loop parity with Dynamo 1.6.1: its recorded planner ticks (shared reference runs, Llama-3.1-8B BF16,
conversation hour) fed to the Dynamo policy through the command a user types, ``llmreplay parity --json``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

REFERENCE = Path("/work/shared/reference/dynamo-ticks")
ENGINE = json.dumps({"aic_backend": "vllm", "aic_system": "h200_sxm", "aic_model_path": "meta-llama/Meta-Llama-3.1-8B",
                     "aic_tp_size": 1})


def planner(mode: str) -> str:
    return json.dumps({"mode": mode, "optimization_target": "sla", "ttft": 2500, "itl": 50,
                       "enable_throughput_scaling": True, "enable_load_scaling": True,
                       "pre_deployment_sweeping_mode": "rapid", "throughput_adjustment_interval": 60,
                       "load_adjustment_interval": 5, "prefill_engine_num_gpu": 1, "decode_engine_num_gpu": 1,
                       "load_predictor": "constant", "scheduling": {"tick_max_duration_seconds": 3600}})


def parity(mode: str) -> dict[str, object]:
    report = REFERENCE / f"conv_{mode}.report.json.gz"
    if not report.exists():
        pytest.skip(f"reference run not found: {report}")
    engine = ["--extra-engine-args", ENGINE] if mode == "agg" else \
        ["--prefill-engine-args", ENGINE, "--decode-engine-args", ENGINE]
    out = CliRunner().invoke(app, ["parity", str(report), "--planner-config", planner(mode), *engine, "--json"])
    assert out.exit_code == 0, out.output
    result: dict[str, object] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize("mode", ["agg", "disagg"])
def test_open_loop_parity_meets_the_decision_bars(mode: str) -> None:
    r = parity(mode)
    assert r["ticks"] == 710
    assert r["decision_agreement"] >= 0.99  # type: ignore[operator]
    assert r["change_agreement"] >= 0.97  # type: ignore[operator]
    assert r["reason_agreement"] >= 0.99  # type: ignore[operator]
    # bootstrapped like Dynamo: 9 prefill and 27 decode benchmark FPMs at granularity 8
    assert r["bootstrap"] == {"ours": {"prefill_fpm_count": 9, "decode_fpm_count": 27},
                              "dynamo": {"prefill_fpm_count": 9, "decode_fpm_count": 27, "benchmark_granularity": 8}}
    errors: dict[str, float] = r["diagnostics_max_rel_error"]  # type: ignore[assignment]
    nulls: dict[str, int] = r["diagnostics_null_mismatches"]  # type: ignore[assignment]
    assert not any(nulls.values())
    # the traffic forecast is exact; the engine capacity within 3 % (AIC 0.12 vs the AIC inside Dynamo)
    for name in ("predicted_num_req", "predicted_isl", "predicted_osl", "predicted_kv_hit_rate"):
        assert errors[name] == 0.0
    for name in ("engine_rps_prefill", "engine_rps_decode", "estimated_itl_ms"):
        assert errors[name] < 0.03, (name, errors[name])
    assert errors["estimated_ttft_ms"] < 0.10  # see docs/validation.md: retention of the mixed-pass store


def test_unreadable_report_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "r.json.gz"
    bad.write_bytes(gzip.compress(b"{not json"))
    out = CliRunner().invoke(app, ["parity", str(bad), "--planner-config", planner("agg"),
                                   "--extra-engine-args", ENGINE])
    assert out.exit_code == 2
    assert "not a readable Dynamo replay report" in " ".join(out.output.split())
    empty = tmp_path / "e.json"
    empty.write_text("{}")
    out = CliRunner().invoke(app, ["parity", str(empty), "--planner-config", planner("agg"),
                                   "--extra-engine-args", ENGINE])
    assert out.exit_code == 2 and "no planner ticks" in " ".join(out.output.split())


def test_parity_strips_what_dynamo_decided() -> None:
    from llmreplay.planner.dynamo.parity import strip_tick

    tick = {"ordinal": 0, "scheduled_tick": {}, "input": {}, "topology": {}, "effects": {"scale_to": 1},
            "runtime_decision": {"target_decode": 3}}
    assert set(strip_tick(tick)) == {"ordinal", "scheduled_tick", "input", "topology"}
