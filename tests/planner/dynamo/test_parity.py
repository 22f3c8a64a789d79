"""Open-loop parity with Dynamo 1.6.1: its recorded planner ticks (shared reference runs, Llama-3.1-8B BF16,
conversation hour) fed to the Dynamo policy through the command a user types, ``llmreplay parity --json``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

REFERENCE = Path("/work/shared/reference/dynamo-ticks")
# the reference runs' engine args, plus the KV cache Dynamo's mocker sized for them (13,792 blocks of 64 tokens,
# from AISimulate's memory model, which llmreplay does not reproduce: its own estimate is 1.1 % larger)
ENGINE = json.dumps({"aic_backend": "vllm", "aic_system": "h200_sxm", "aic_model_path": "meta-llama/Meta-Llama-3.1-8B",
                     "aic_tp_size": 1, "block_size": 64, "num_gpu_blocks": 13792})


def planner(mode: str) -> str:
    return json.dumps({"mode": mode, "optimization_target": "sla", "ttft": 2500, "itl": 50,
                       "enable_throughput_scaling": True, "enable_load_scaling": True,
                       "pre_deployment_sweeping_mode": "rapid", "throughput_adjustment_interval": 60,
                       "load_adjustment_interval": 5, "prefill_engine_num_gpu": 1, "decode_engine_num_gpu": 1,
                       "load_predictor": "constant", "scheduling": {"tick_max_duration_seconds": 3600}})


RERUN = Path(__file__).parent.parent.parent / "data" / "dynamo_rerun"
CONTINUOUS = ("estimated_ttft_ms", "estimated_itl_ms", "engine_rps_prefill", "engine_rps_decode")


def parity(mode: str, report: Path | None = None) -> dict[str, object]:
    report = report or REFERENCE / f"conv_{mode}.report.json.gz"
    if not report.exists():
        pytest.skip(f"reference run not found: {report}")
    engine = ["--extra-engine-args", ENGINE] if mode == "agg" else \
        ["--prefill-engine-args", ENGINE, "--decode-engine-args", ENGINE]
    out = CliRunner().invoke(app, ["parity", str(report), "--planner-config", planner(mode), *engine, "--json"])
    assert out.exit_code == 0, out.output
    result: dict[str, object] = json.loads(out.stdout)
    return result


def rerun(mode: str) -> list[dict[str, Any]]:
    """Dynamo 1.6.1's own planner fed the same recorded inputs (``scripts/dynamo_rerun.py``)."""
    raw = gzip.decompress((RERUN / f"conv_{mode}.rerun.json.gz").read_bytes())
    ticks: list[dict[str, Any]] = json.loads(raw)["ticks"]
    return ticks


def dynamo_self_error(mode: str, name: str) -> float:
    """How far Dynamo's own planner, fed its recorded inputs, lands from its recorded diagnostic ``name``."""
    recorded = json.loads(gzip.decompress((REFERENCE / f"conv_{mode}.report.json.gz").read_bytes()))
    worst = 0.0
    for tick, again in zip(recorded["planner"]["ticks"], rerun(mode), strict=True):
        a, b = again["diagnostics"].get(name), tick["effects"]["diagnostics"].get(name)
        if a is not None and b is not None:
            worst = max(worst, abs(a - b) / max(abs(b), 1e-9))
    return worst


@pytest.mark.parametrize("mode", ["agg", "disagg"])
def test_open_loop_parity_with_dynamos_recording(mode: str) -> None:
    r = parity(mode)
    assert r["ticks"] == 710
    assert r["decision_agreement"] >= 0.99  # type: ignore[operator]
    assert r["change_agreement"] >= 0.97  # type: ignore[operator]
    assert r["reason_agreement"] >= 0.99  # type: ignore[operator]
    # bootstrapped like Dynamo: 9 prefill and 27 decode benchmark FPMs at granularity 8, bit-identical (Dynamo's
    # report holds the sha256 of its bootstrap FPMs; ours hashes the same way)
    boot: dict[str, Any] = r["bootstrap"]  # type: ignore[assignment]
    assert {k: boot["ours"][k] for k in ("prefill_fpm_count", "decode_fpm_count")} == \
        {"prefill_fpm_count": 9, "decode_fpm_count": 27}
    assert {k: boot["dynamo"][k] for k in ("prefill_fpm_count", "decode_fpm_count", "benchmark_granularity")} == \
        {"prefill_fpm_count": 9, "decode_fpm_count": 27, "benchmark_granularity": 8}
    assert boot["identical"] and boot["ours"]["fpm_sha256"] == boot["dynamo"]["fpm_sha256"]
    errors: dict[str, float] = r["diagnostics_max_rel_error"]  # type: ignore[assignment]
    nulls: dict[str, int] = r["diagnostics_null_mismatches"]  # type: ignore[assignment]
    assert not any(nulls.values())
    # the traffic forecast is exact; the engine capacity and ITL within 3 % (the bootstrap FPMs are bit-identical)
    for name in ("predicted_num_req", "predicted_isl", "predicted_osl", "predicted_kv_hit_rate"):
        assert errors[name] == 0.0
    for name in ("engine_rps_prefill", "engine_rps_decode", "estimated_itl_ms"):
        assert errors[name] < 0.03, (name, errors[name])
    # estimated TTFT: the 3 % holds except where Dynamo's own planner, fed the same recorded inputs, also
    # misses its recording (agg: 7.9-8.5 % on the same 15 ticks; its regression's retention is random, see
    # docs/validation.md); there ours may be no further off than Dynamo itself plus half a point
    assert errors["estimated_ttft_ms"] < max(0.03, dynamo_self_error(mode, "estimated_ttft_ms") + 0.005)
    # throughput floors: equal, but for one disagg throughput tick on a knife edge (demand / rate = 1.0000x, at
    # 3,300 s) that Dynamo's own reruns land on either side of; every decision that differs follows from it
    assert errors["throughput_lower_bound_decode"] == 0.0
    if mode == "agg":
        assert errors["throughput_lower_bound_prefill"] == 0.0 and r["decision_agreement"] == 1.0
    else:
        disagreements: list[dict[str, Any]] = r["first_disagreements"]  # type: ignore[assignment]
        assert 0 < len(disagreements) <= 3
        assert all(3300 <= d["at_s"] < 3360 for d in disagreements)


@pytest.mark.parametrize("mode", ["agg", "disagg"])
def test_open_loop_parity_with_dynamos_own_rerun_meets_every_bar(mode: str, tmp_path: Path) -> None:
    """The same recorded inputs, judged against what Dynamo's own planner decides on them (not against one
    random realisation of its regression): the issue's bars, every diagnostic within 3 %."""
    if not (REFERENCE / f"conv_{mode}.report.json.gz").exists():
        pytest.skip("reference run not found")
    report = json.loads(gzip.decompress((REFERENCE / f"conv_{mode}.report.json.gz").read_bytes()))
    for tick, again in zip(report["planner"]["ticks"], rerun(mode), strict=True):
        assert tick["ordinal"] == again["ordinal"]
        tick["effects"] = {"scale_to": again["scale_to"], "diagnostics": again["diagnostics"]}
    path = tmp_path / f"{mode}.rerun-report.json.gz"
    path.write_bytes(gzip.compress(json.dumps(report).encode()))
    r = parity(mode, path)
    assert r["decision_agreement"] >= 0.99  # type: ignore[operator]
    assert r["change_agreement"] >= 0.97  # type: ignore[operator]
    errors: dict[str, float] = r["diagnostics_max_rel_error"]  # type: ignore[assignment]
    nulls: dict[str, int] = r["diagnostics_null_mismatches"]  # type: ignore[assignment]
    assert not any(nulls.values())
    for name in CONTINUOUS:
        assert errors[name] < 0.03, (name, errors[name])
    for name in ("predicted_num_req", "predicted_isl", "predicted_osl", "predicted_kv_hit_rate"):
        assert errors[name] == 0.0


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
