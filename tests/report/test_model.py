"""The typed run report: its shipped JSON Schema is current, ``llmreplay schema`` prints it, and readers accept
every minor version of their major and refuse another major with a message (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from reportfixtures import make_report
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.report import model


def test_shipped_schema_is_current() -> None:
    """Fails when a model changed without regenerating the schema file. To fix: run
    ``python -c "from llmreplay.report.model import write_schema_file; write_schema_file()"`` and bump the
    version (a new field: minor; a renamed or removed one: major)."""
    assert model.shipped_schema_text() == model.json_schema_text()


def test_schema_command_prints_the_versioned_schema() -> None:
    res = CliRunner().invoke(app, ["schema"])
    assert res.exit_code == 0, res.output
    schema = json.loads(res.output)
    assert schema["$id"] == model.SCHEMA_ID and schema["version"] == f"{model.SCHEMA_MAJOR}.{model.SCHEMA_MINOR}"
    for block in ("requests", "metrics", "sla", "cost", "pools", "timeseries", "planner", "baselines", "sim"):
        assert block in schema["properties"]
    cost = schema["$defs"]["Cost"]["properties"]
    assert {"energy_kwh", "joules_per_output_token", "cost_usd"} <= set(cost)
    assert "policy" in schema["$defs"]["PlannerReport"]["properties"]
    assert "count" in schema["$defs"]["PlannerTick"]["properties"]


def _write(tmp_path: Path, report: dict[str, Any]) -> Path:
    p = tmp_path / "r.json"
    p.write_text(json.dumps(report))
    return p


def test_newer_minor_version_with_new_fields_is_read(tmp_path: Path) -> None:
    report = make_report("agg_planner")
    report["schema"] = f"llmreplay.run/{model.SCHEMA_MAJOR}.{model.SCHEMA_MINOR + 7}"
    report["cost"]["some_future_field"] = 1.0
    report["planner"]["policy"] = "dynamo"
    report["planner"]["ticks"][0]["count"] = 3
    report["planner"]["ticks"][0]["a_new_diagnostic"] = "kept"
    report["baselines"] = {"best_fixed": {"workers": 3, "gpu_hours": 1.5}, "regret": {"gpu_hours": 0.2}}
    m = model.load_report(_write(tmp_path, report))
    assert m.planner is not None and m.planner.policy == "dynamo"
    assert m.planner.ticks[0].count == 3 and m.planner.ticks[0].get("a_new_diagnostic") == "kept"
    assert m.baselines is not None and m.baselines.best_fixed is not None
    assert m.baselines.best_fixed.model_dump()["workers"] == 3
    res = CliRunner().invoke(app, ["report", str(tmp_path / "r.json"), "-o", str(tmp_path / "r.html"),
                                   "--plotlyjs", "cdn"])
    assert res.exit_code == 0, res.output


def test_another_major_version_is_refused_with_a_message(tmp_path: Path) -> None:
    report = make_report("agg")
    report["schema"] = "llmreplay.run/2.0"
    res = llmreplay("report", str(_write(tmp_path, report)), "-o", str(tmp_path / "r.html"))
    assert res.returncode == 2
    assert "llmreplay.run/1.x" in res.stderr and "Traceback" not in res.stderr


def test_a_bad_field_is_named(tmp_path: Path) -> None:
    report = make_report("agg")
    report["cost"]["gpu_hours"] = "lots"
    res = llmreplay("compare", str(_write(tmp_path, report)), str(tmp_path / "r.json"))
    assert res.returncode == 2
    err = " ".join(res.stderr.split())
    assert "field cost.gpu_hours" in err and "llmreplay schema" in err and "Traceback" not in err


def llmreplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmreplay", *args], capture_output=True, text=True, timeout=120)


def test_every_typed_tick_field_is_one_the_planners_write() -> None:
    """The report types the tick fields both policies share; each must be a field of the planners' own
    TickDiagnostics with the same type, or a renamed diagnostic would silently become an untyped extra."""
    import typing

    from llmreplay.planner.planner import TickDiagnostics
    from llmreplay.report.model import PlannerTick

    def members(annotation: Any) -> set[Any]:  # int | None and Optional[int] alike
        return set(typing.get_args(annotation)) or {annotation}

    written = typing.get_type_hints(TickDiagnostics)
    typed = {name: field.annotation for name, field in PlannerTick.model_fields.items()}
    assert set(typed) <= set(written), set(typed) - set(written)
    for name, annotation in typed.items():
        assert members(annotation) == members(written[name]), name
