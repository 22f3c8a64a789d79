"""``llmreplay compare`` as a user types it: the settings that differ come first, one row each, and metrics judged
under different SLAs are marked not comparable."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

RUN = ["run", "--demo", "--max-requests", "120", "--num-workers", "2"]


def _run(tmp: Path, name: str, *extra: str) -> Path:
    path = tmp / f"{name}.json"
    res = CliRunner().invoke(app, [*RUN, *extra, "--report-json", str(path)])
    assert res.exit_code == 0, res.output
    return path


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    return {
        "base": _run(tmp, "base", "--sla-ttft-ms", "1500", "--sla-itl-ms", "50"),
        "same": _run(tmp, "same", "--sla-ttft-ms", "1500", "--sla-itl-ms", "50"),
        "fp8": _run(tmp, "fp8", "--sla-ttft-ms", "2500", "--sla-itl-ms", "50",
                    "--extra-engine-args", '{"kv_cache_dtype": "fp8"}'),
    }


def _settings_rows(output: str) -> list[str]:
    block = output.split("compare: metrics")[0]
    return [ln.split("│")[1].strip() for ln in block.splitlines() if ln.count("│") >= 3]


def test_differing_settings_come_first(reports: dict[str, Path]) -> None:
    res = CliRunner().invoke(app, ["compare", str(reports["base"]), str(reports["fp8"])])
    assert res.exit_code == 0, res.output
    rows = _settings_rows(res.output)
    assert rows[0] == "sla.ttft_ms"  # the SLA first
    assert "extra_engine_args.kv_cache_dtype" in rows  # precision
    assert any(r.startswith("hardware.") for r in rows)  # the KV dtype shows in the hardware line too
    assert not any(r.startswith(("report_json", "sla.itl_ms")) for r in rows)  # output paths and equal values
    line = next(ln for ln in res.output.splitlines() if "kv_cache_dtype" in ln)
    assert "auto" in line and "fp8" in line
    # attainment under different SLAs is not comparable; GPU-hours is
    assert "SLA attainment †" in res.output and "goodput (req/s) †" in res.output
    assert "GPU-hours †" not in res.output
    assert "not comparable: the runs were judged on different SLAs" in " ".join(res.output.split())
    assert "utilization" in res.output and "utilisation" not in res.output


def test_identical_settings_say_so(reports: dict[str, Path]) -> None:
    res = CliRunner().invoke(app, ["compare", str(reports["base"]), str(reports["same"])])
    assert res.exit_code == 0, res.output
    assert "settings are identical" in res.output and "†" not in res.output


def test_compare_needs_two_reports(reports: dict[str, Path]) -> None:
    from llmreplay.cli.compare_cmd import execute_compare
    from llmreplay.errors import InputError

    with pytest.raises(InputError, match="at least two"):
        execute_compare([reports["base"]], console=None)  # type: ignore[arg-type]
