"""``planner_config.policy``: Dynamo's planner by default, our improved one on request; Dynamo's keys as Dynamo
accepts them; whatever the Dynamo policy cannot honour is an error or a named warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.errors import InputError
from llmreplay.planner.config import parse_planner_config
from llmreplay.planner.dynamo.settings import settings_from_config


def test_policy_defaults_to_dynamo_and_accepts_llmreplay() -> None:
    cfg, _ = parse_planner_config({"optimization_target": "sla", "load_predictor": "constant"})
    assert cfg.policy == "dynamo"
    cfg, _ = parse_planner_config({"policy": "llmreplay"})
    assert cfg.policy == "llmreplay" and cfg.load_predictor == "constant"
    with pytest.raises(InputError, match="policy"):
        parse_planner_config({"policy": "magic"})


def test_scheduling_block_is_accepted_and_tick_deadline_recorded_as_meaningless() -> None:
    cfg, warnings = parse_planner_config({"scheduling": {"tick_max_duration_seconds": 3600},
                                          "load_predictor": "constant"})
    assert cfg.scheduling.tick_max_duration_seconds == 3600
    assert any("tick_max_duration_seconds" in w and "no meaning in a simulator" in w for w in warnings)
    with pytest.raises(InputError):
        parse_planner_config({"scheduling": {"external_plugins": [{"plugin_id": "x"}]}})


def test_scale_interval_defaults_to_the_gcd_of_the_enabled_loops() -> None:
    cfg, _ = parse_planner_config({"optimization_target": "sla", "load_adjustment_interval": 10,
                                   "throughput_adjustment_interval": 25, "enable_load_scaling": True,
                                   "load_predictor": "constant"})
    assert settings_from_config(cfg, "agg").scale_interval_s == 5.0


@pytest.mark.parametrize("interval", [1e-9, 0.0, -5])
def test_intervals_below_a_tenth_of_a_second_are_rejected(interval: float) -> None:
    with pytest.raises(InputError, match="load_adjustment_interval"):
        parse_planner_config({"load_adjustment_interval": interval})


def test_what_the_dynamo_policy_cannot_honour_is_an_error_or_a_named_warning() -> None:
    with pytest.raises(InputError, match="load_predictor_log1p"):
        parse_planner_config({"load_predictor_log1p": True})
    with pytest.raises(InputError, match="not available under policy 'dynamo'"):
        parse_planner_config({"load_predictor": "moving_average"})
    _, warnings = parse_planner_config({"profile_results_dir": "profiling_results", "load_predictor": "constant"})
    assert any("profile_results_dir is not read" in w for w in warnings)
    cfg, warnings = parse_planner_config({"optimization_target": "sla"})
    from llmreplay.planner.dynamo.predictors import pmdarima_available

    if pmdarima_available():
        assert cfg.load_predictor == "arima"
    else:
        assert cfg.load_predictor == "constant"
        assert any(w.startswith("load_predictor_default_substituted") for w in warnings)


def test_run_names_the_policy_in_report_header_and_html(tmp_path: Path) -> None:
    planner = {"optimization_target": "sla", "ttft": 800, "itl": 40, "enable_load_scaling": True,
               "load_adjustment_interval": 5, "throughput_adjustment_interval": 30, "load_predictor": "constant"}
    out = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "300", "--no-baselines", "--planner-config",
                                   json.dumps(planner),
                                   "--report-json", str(tmp_path / "r.json"), "--report-html",
                                   str(tmp_path / "r.html")])
    assert out.exit_code == 0, out.output
    assert "dynamo policy" in " ".join(out.output.split())
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["planner"]["policy"] == "dynamo"
    assert report["planner"]["bootstrap"]["decode_fpm_count"] > 0
    assert report["planner"]["ticks"], "the Dynamo policy ticked"
    assert "planner dynamo:" in (tmp_path / "r.html").read_text()
    out = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "300", "--no-baselines", "--planner-config",
                                   json.dumps({**planner, "policy": "llmreplay"}), "--report-json",
                                   str(tmp_path / "l.json")])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "l.json").read_text())["planner"]["policy"] == "llmreplay"
