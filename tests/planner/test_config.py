from __future__ import annotations

import importlib.util

import pytest

from llmreplay.errors import InputError
from llmreplay.planner.config import parse_planner_config


def test_dynamo_spellings_and_ignored_keys() -> None:
    cfg, warnings = parse_planner_config({
        "ttft_ms": 1500, "itl_ms": 40, "throughput_adjustment_interval_seconds": 300,
        "load_adjustment_interval_seconds": 10, "environment": "virtual", "backend": "vllm",
        "kalman_q_level": 1.0, "optimization_target": "sla", "load_predictor": "constant",
    })
    assert (cfg.ttft, cfg.itl, cfg.throughput_adjustment_interval, cfg.load_adjustment_interval) == (1500, 40, 300, 10)
    assert len(warnings) == 3 and all("ignored" in w for w in warnings)


def test_defaults_follow_dynamo() -> None:
    cfg, _ = parse_planner_config({})
    assert cfg.optimization_target == "throughput"
    # non-sla targets force the reactive loop on and the predictive loop off, as Dynamo does
    assert cfg.enable_load_scaling and not cfg.enable_throughput_scaling
    sla, _ = parse_planner_config({"optimization_target": "sla"})
    assert sla.enable_throughput_scaling and not sla.enable_load_scaling
    assert (sla.ttft, sla.itl, sla.load_adjustment_interval, sla.throughput_adjustment_interval) == (500, 50, 5, 180)
    # Dynamo's default predictor is ARIMA (pmdarima, the `arima` extra); without it the substitution is named
    has_pmdarima = importlib.util.find_spec("pmdarima") is not None
    assert (sla.min_endpoint, sla.max_gpu_budget) == (1, 8)
    assert sla.load_predictor == ("arima" if has_pmdarima else "constant")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ({"ttft": 500, "bogus": 1}, "unknown key 'bogus'"),
        ({"ttft": -1}, "ttft"),
        ({"ttft": 1, "ttft_ms": 2}, "both"),
        ({"optimization_target": "load"}, "prefill_scale_up_queue_tokens"),
        ({"load_predictor": "prophet"}, "load_predictor"),
    ],
)
def test_bad_planner_config(raw: dict[str, object], needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        parse_planner_config(raw)
