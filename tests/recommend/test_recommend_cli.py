"""``llmreplay recommend`` as a user types it: the answer, the files, replaying the winner, resuming, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from recutil import ENGINE, GOAL, SLA, write_small_trace, write_space
from typer.testing import CliRunner

from llmreplay.cli.app import app

runner = CliRunner()

@pytest.fixture(scope="module")
def small_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_trace(tmp_path_factory.mktemp("trace"))


@pytest.fixture(scope="module")
def space_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_space(tmp_path_factory.mktemp("space"))


def _args(trace: Path, space: Path, *extra: str) -> list[str]:
    return ["recommend", str(trace), "--sla-ttft-ms", str(SLA["sla_ttft_ms"]), "--sla-itl-ms",
            str(SLA["sla_itl_ms"]), "--extra-engine-args", json.dumps(ENGINE), "--goal", str(GOAL),
            "--space", str(space), "--jobs", "2", "--no-progress", *extra]


@pytest.fixture(scope="module")
def first_run(small_trace: Path, space_file: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, Any]]:
    """One search into a folder; the other tests read it back (its cache makes their re-runs replay nothing)."""
    out = tmp_path_factory.mktemp("rec") / "rec"
    res = runner.invoke(app, _args(small_trace, space_file, "--out", str(out), "--json"))
    assert res.exit_code == 0, res.output
    return out, json.loads(res.output)


def test_answer_is_the_cheapest_passing_candidate_with_cost_and_energy(first_run: tuple[Path, dict[str, Any]]
                                                                      ) -> None:
    _, answer = first_run
    winner = answer["winner"]
    assert winner["meets_goal"] and winner["attainment"] >= GOAL
    ranked = answer["ranked"]
    assert ranked[0]["winner"] and ranked[0]["deployment"] == winner["deployment"]
    assert not [r for r in ranked if r["meets_goal"] and r["cost_per_hour"] < winner["cost_per_hour"]]
    for key in ("energy_kwh", "joules_per_output_token", "gpu_hours", "cost_per_m_output_tokens", "goodput_rps",
                "ttft_p50_ms", "ttft_p90_ms", "itl_p50_ms", "itl_p90_ms"):
        assert winner[key] is not None and winner[key] > 0, key
    assert answer["prices"]["h100_sxm"]["source"] and answer["prices"]["h100_sxm"]["date"]


def test_out_folder_files(first_run: tuple[Path, dict[str, Any]]) -> None:
    out, answer = first_run
    winner = answer["winner"]
    cfg = yaml.safe_load((out / "recommendation.yaml").read_text())
    assert Path(cfg["trace"]).is_absolute()
    dyn = json.loads((out / "dynamo_args.json").read_text())
    assert dyn["frontend"][:3] == ["python", "-m", "dynamo.frontend"]
    assert sum(w["replicas"] * w["gpus_per_replica"] for w in dyn["workers"]) == winner["gpus"]
    table = pq.read_table(out / "candidates.parquet").to_pylist()
    assert len(table) == answer["search"]["replays"]["screen"] + answer["search"]["replays"]["full"]
    assert {r["stage"] for r in table} == {"screen", "full"}
    html = (out / "pareto.html").read_text()
    assert "Pareto front" in html and "winner" in html


def test_the_recommendation_replays_on_its_own(first_run: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    out, answer = first_run
    report = tmp_path / "winner.json"
    res = runner.invoke(app, ["run", "--config", str(out / "recommendation.yaml"), "--report-json", str(report),
                              "--quiet"])
    assert res.exit_code == 0, res.output
    attainment = json.loads(report.read_text())["sla"]["attainment"]
    assert attainment == answer["winner"]["attainment"] >= GOAL


def test_rerun_resumes_from_the_folder(first_run: tuple[Path, dict[str, Any]], small_trace: Path,
                                       space_file: Path) -> None:
    out, answer = first_run
    res = runner.invoke(app, _args(small_trace, space_file, "--out", str(out), "--json"))
    again = json.loads(res.output)
    assert again["search"]["replays"] == {"screen": 0, "full": 0}
    assert again["search"]["cached"] == sum(answer["search"]["replays"].values())
    assert again["winner"]["deployment"] == answer["winner"]["deployment"]
    assert [r["attainment"] for r in again["ranked"]] == [r["attainment"] for r in answer["ranked"]]


def test_table_output_shows_cost_and_energy(first_run: tuple[Path, dict[str, Any]], small_trace: Path,
                                            space_file: Path) -> None:
    out, _ = first_run
    res = runner.invoke(app, _args(small_trace, space_file, "--out", str(out)))
    assert res.exit_code == 0, res.output
    for header in ("$/h", "GPU-h", "kWh", "attain.", "goodput", "TTFT p50", "ITL p50", "p90", "winner:"):
        assert header in res.output, header


def test_no_deployment_meets_the_goal_exits_3(small_trace: Path, tmp_path: Path) -> None:
    space = tmp_path / "tiny.yaml"
    space.write_text(yaml.safe_dump({"agg": {"workers": [1]}, "disagg": None, "routers": ["round_robin"]}))
    res = runner.invoke(app, _args(small_trace, space))
    assert res.exit_code == 3
    assert "no deployment in the space meets" in res.output


def test_bad_space_file_is_one_clear_error(small_trace: Path, tmp_path: Path) -> None:
    space = tmp_path / "bad.yaml"
    space.write_text("agg:\n  workerz: 1..4\n")
    res = runner.invoke(app, _args(small_trace, space))
    assert res.exit_code == 2
    assert "workerz" in str(res.exception) or "workerz" in res.output


def test_bad_price_file_is_one_clear_error(small_trace: Path, space_file: Path, tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("h100_sxm: -3\n")
    res = runner.invoke(app, _args(small_trace, space_file, "--gpu-prices", str(prices)))
    assert res.exit_code == 2
    assert "h100_sxm" in str(res.exception) or "h100_sxm" in res.output


def test_planner_fleet_is_priced_by_its_average_gpus(small_trace: Path, tmp_path: Path) -> None:
    """A planner-managed fleet is replayed on the whole trace and costs its GPU-hours, not its start size."""
    space = tmp_path / "planner.yaml"
    space.write_text(yaml.safe_dump({"gpus": ["h100_sxm"], "weights": ["fp8"], "routers": ["round_robin"],
                                     "agg": None, "disagg": None,
                                     "planner": [{"mode": "agg", "planner_config": {"min_endpoint": 1,
                                                                                     "max_gpu_budget": 4}}]}))
    res = runner.invoke(app, _args(small_trace, space, "--json", "--goal", "0.01"))  # the last --goal wins
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)["ranked"]
    assert row["planner"] == 0 and row["stage"] == "full"
    hours = row["simulated_s"] / 3600
    assert row["cost_per_hour"] == pytest.approx(row["gpu_hours"] * 49.24 / 8 / hours)


PEER_PYTHON = Path("/root/.cache/peer-dynamo/venv/bin/python")


def _winner_files(small_trace: Path, tmp_path: Path, space: dict[str, Any]) -> dict[str, Any]:
    space_path = tmp_path / "space.yaml"
    space_path.write_text(yaml.safe_dump(space))
    out = tmp_path / "out"
    res = runner.invoke(app, _args(small_trace, space_path, "--out", str(out), "--goal", "0.01"))
    assert res.exit_code == 0, res.output
    return dict(json.loads((out / "dynamo_args.json").read_text()))


def test_dynamo_args_use_dynamo_1_6_disagg_flags(small_trace: Path, tmp_path: Path) -> None:
    """Dynamo 1.6.1's vLLM worker takes --disaggregation-mode (and a prefill worker must be given
    --kv-transfer-config); the pre-1.6 --is-prefill-worker flag would not start."""
    dyn = _winner_files(small_trace, tmp_path, {"gpus": ["h100_sxm"], "weights": ["fp8"], "routers": ["round_robin"],
                                                "agg": None, "disagg": {"prefill": [1], "decode": [1]}})
    roles = {w["role"]: w["command"] for w in dyn["workers"]}
    assert set(roles) == {"prefill", "decode"}
    for role, command in roles.items():
        assert command[command.index("--disaggregation-mode") + 1] == role
        transfer = json.loads(command[command.index("--kv-transfer-config") + 1])
        assert transfer == {"kv_connector": "NixlConnector",
                            "kv_role": {"prefill": "kv_producer", "decode": "kv_consumer"}[role]}
        assert "--is-prefill-worker" not in command


def test_dynamo_args_planner_config_is_dynamos(small_trace: Path, tmp_path: Path) -> None:
    """A planner fleet's planner command is `python -m dynamo.planner --config JSON` with Dynamo's key names and
    no llmreplay-only key; where Dynamo 1.6.1 is installed beside us, its own PlannerConfig accepts it."""
    dyn = _winner_files(small_trace, tmp_path, {
        "gpus": ["h100_sxm"], "weights": ["fp8"], "routers": ["round_robin"], "agg": None, "disagg": None,
        "planner": [{"mode": "agg", "planner_config": {"policy": "dynamo", "min_endpoint": 1, "max_gpu_budget": 4,
                                                       "load_predictor": "constant"}}]})
    planner = dyn["planner"]
    assert planner["command"][:4] == ["python", "-m", "dynamo.planner", "--config"]
    config = json.loads(planner["command"][4])
    assert config == planner["config"]
    assert {"ttft_ms", "itl_ms", "max_gpu_budget"} <= set(config)
    assert not {"ttft", "itl", "policy", "schedule"} & set(config)
    if PEER_PYTHON.exists():
        import subprocess
        # Dynamo's PlannerConfig ignores unknown keys silently, so check every key is one of its fields and
        # that it reads back each value we wrote.
        script = ("import json, sys\nfrom dynamo.planner.config.planner_config import PlannerConfig\n"
                  "raw = json.loads(sys.argv[1]); cfg = PlannerConfig.from_config_arg(sys.argv[1])\n"
                  "unknown = set(raw) - set(PlannerConfig.model_fields)\nassert not unknown, unknown\n"
                  "assert all(getattr(cfg, k) == v for k, v in raw.items()), raw\n")
        check = subprocess.run([str(PEER_PYTHON), "-c", script, planner["command"][4]],
                               capture_output=True, text=True, timeout=120)
        assert check.returncode == 0, check.stderr[-2000:]
