"""CLI options come from the config models: every field has its flag, help, default and range, and
docs/usage.md's option tables are what the models say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from llmreplay import __version__
from llmreplay.cli import docgen
from llmreplay.cli.app import app
from llmreplay.config import RunConfig

USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"


def _help(*args: str) -> str:
    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert res.exit_code == 0, res.output
    return res.output


def test_usage_tables_are_generated_from_the_models() -> None:
    text = USAGE.read_text(encoding="utf-8")
    assert docgen.splice(text, docgen.render()) == text, (
        "docs/usage.md's option tables are stale: run `python -m llmreplay.cli.docgen` and commit the result"
    )


def test_every_run_config_field_is_a_run_flag() -> None:
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    opts = {o for p in command.params for o in p.opts}
    for name in RunConfig.model_fields:
        if name in ("trace", "fast_forward"):
            continue
        assert "--" + name.replace("_", "-") in opts, name
    # Dynamo's spellings, and the flag that turns fast-forward off
    assert {"--router-mode", "--report-jsonl", "--reference-steps"} <= opts


def test_run_help_shows_defaults_ranges_and_no_bool_metavar() -> None:
    text = _help("run")
    assert "--disagg-max-local-prefill-tokens" in text
    assert re.search(r"--trace-block-size .*\[default: 512\]", " ".join(text.split()))
    assert "[default: 1024]" in text  # --max-workers-per-pool
    assert "Range: >= 1" in text
    assert "<bool>" not in text
    assert "<bool>" not in _help("sweep")


def test_sweep_help_shows_the_ray_extra() -> None:
    assert "pip install 'llmreplay[ray]'" in _help("sweep")


def test_version() -> None:
    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"llmreplay {__version__}"


def test_a_documented_flag_reaches_the_run(tmp_path: Path) -> None:
    """--disagg-max-local-prefill-tokens was documented but missing: now it exists and is used."""
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "30", "--quiet", "--num-prefill-workers", "1",
                                   "--num-decode-workers", "1", "--disagg-max-local-prefill-tokens", "100000",
                                   "--report-json", str(report), "--requests-out", str(tmp_path / "x.jsonl")])
    assert res.exit_code == 0, res.output
    assert json.loads(report.read_text())["config"]["disagg_max_local_prefill_tokens"] == 100000
    rows = [json.loads(line) for line in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert all(r["kv_transfer_ms"] is None for r in rows)  # every prompt is short enough to stay local


def test_flags_override_a_config_file_only_when_given(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("max_requests: 12\nseed: 3\nnum_workers: 2\n")
    report = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["run", "--demo", "--config", str(cfg), "--seed", "4", "--quiet",
                                   "--report-json", str(report)])
    assert res.exit_code == 0, res.output
    config = json.loads(report.read_text())["config"]
    assert (config["seed"], config["num_workers"], config["trace_requests"]) == (4, 2, 12)


@pytest.mark.parametrize(("args", "needles"), [
    (["--max-sim-time-seconds", "inf"], ["--max-sim-time-seconds", "finite"]),
    (["--warmup-s", "inf"], ["--warmup-s", "finite"]),
    (["--sla-ttft-ms", "inf"], ["--sla-ttft-ms", "finite"]),
    (["--sla-itl-ms", "nan"], ["--sla-itl-ms", "finite"]),
    (["--arrival-speedup-ratio", "1e-300"], ["--arrival-speedup-ratio", ">= 1e-06"]),
    (["--seed", "-1"], ["--seed", ">= 0", "got -1"]),
    (["--num-workers", "1000000"], ["num_workers", "max_workers_per_pool", "--max-workers-per-pool"]),
    (["--arrival-jitter", "uniform:1e300"], ["arrival_jitter", "uniform:1e300", "finite"]),
    (["--extra-engine-args", '{"kv_transfer_latency_ms": 1e300}'], ["kv_transfer_latency_ms", "1000000"]),
    (["--extra-engine-args", '{"speedup_ratio": 1e-300}'], ["speedup_ratio", "0.000001"]),
    (["--trace-format", "parquet"], ["--trace-format", "mooncake"]),
])
def test_numeric_and_choice_options_are_checked_before_anything_runs(args: list[str], needles: list[str]) -> None:
    res = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "5", *args], terminal_width=200)
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    text = " ".join(res.output.split())
    for needle in needles:
        assert needle in text, text


def test_the_worker_cap_can_be_raised_on_purpose(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "5", "--quiet", "--num-workers", "3",
                                   "--max-workers-per-pool", "2"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "5", "--quiet", "--num-workers", "3",
                                   "--max-workers-per-pool", "3"])
    assert res.exit_code == 0, res.output


def test_seconds_to_ns_rounds() -> None:
    """``int(4.1 * 1e9)`` is 4,099,999,999: the one conversion rounds, so a 4.1 s horizon or interval is exact."""
    from llmreplay.units import ms_to_ns, s_to_ns

    assert int(4.1 * 1e9) == 4_099_999_999
    assert s_to_ns(4.1) == 4_100_000_000
    assert ms_to_ns(0.1) == 100_000


@pytest.mark.parametrize("args", [
    ["perf", "show", "--isl", "inf"],
    ["perf", "show", "--ttft", "0"],
    ["perf", "show", "--granularity", "1000000"],
    ["sweep", "missing.yaml", "--jobs", "0"],
    ["synth", "poisson", "--num-requests", "10", "--seed", "-1", "-o", "x.jsonl"],
    ["trace-stats", "x.jsonl", "--trace-block-size", "0"],
])
def test_numeric_flags_of_every_command_are_checked(args: list[str]) -> None:
    res = CliRunner().invoke(app, args, terminal_width=200)
    assert res.exit_code == 2, res.output
    assert "Invalid value" in res.output


def test_time_units_are_defined_once() -> None:
    """No module keeps its own ns-per-second constant or a truncating ``int(x * 1e9)``: llmreplay.units has the
    one conversion (a second constant is how 4.1 s became 4,099,999,999 ns in one place)."""
    src = Path(__file__).resolve().parents[2] / "src" / "llmreplay"
    own_constant = re.compile(r"^\s*(NS|NS_PER_S|NS_PER_MS)\s*=\s*1[_0-9e]", re.M)
    truncating = re.compile(r"int\([^()]*\*\s*(1e9|1_000_000_000|NS_PER_S)\s*\)")
    for path in src.rglob("*.py"):
        if path.name == "units.py":
            continue
        text = path.read_text(encoding="utf-8")
        assert not own_constant.search(text), path
        assert not truncating.search(text), path
