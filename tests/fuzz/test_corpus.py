"""The fuzz corpus: one or more bad files per bad-input class of issue #13 (and more of our own), each run
through the command a user would type. Every one must exit 2 with one paragraph naming the file: zero
tracebacks, zero hangs (each run is bounded by the caps it hits), zero wrong numbers printed.

The corpus lives in ``corpus/<kind>/``; the kind says how the file is handed to the CLI (see ``COMMANDS``).
Files are small and committed as they are (binary ones included), so a failure reproduces from the path alone.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app

CORPUS = Path(__file__).resolve().parent / "corpus"
RUN = ["run", "--demo", "--max-requests", "20"]

#: kind → the command line that feeds a corpus file of that kind to the CLI
COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    "trace": lambda f, tmp: ["run", str(f), "--max-requests", "20"],
    "config": lambda f, tmp: [*RUN, "--config", str(f)],
    "engine_args": lambda f, tmp: [*RUN, "--extra-engine-args", str(f)],
    "planner_config": lambda f, tmp: [*RUN, "--planner-config", str(f)],
    "model": lambda f, tmp: [*RUN, "--extra-engine-args", json.dumps({"model": str(f)})],
    "table": lambda f, tmp: [*RUN, "--extra-engine-args", json.dumps({"perf_model": {"kind": "table",
                                                                                     "path": str(f)}})],
    "report": lambda f, tmp: ["report", str(f), "-o", str(tmp / "report.html")],
    "sweep": lambda f, tmp: ["sweep", str(f), "--out", str(tmp / "out"), "--no-progress"],
}
#: files whose content parses but holds an impossible value found only when it is used: the message names the
#: field or the perf model (what to fix) rather than the file
NAMES_THE_FIELD = {
    "engine_args/speedup_1e-300.json": "'speedup_ratio'",  # the engine-arg range (>= 1e-06) refuses it
    "engine_args/constant_step_1e300.json": "perf model constant (1e+300 ms per step)",
}
CASES = sorted((p.parent.name, p.name) for p in CORPUS.glob("*/*") if p.is_file())


def invoke(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, args)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: traceback instead of exit 2") from result.exception
    return result.exit_code, result.stdout, result.stderr


def test_every_kind_has_a_command_and_files() -> None:
    kinds = {d.name for d in CORPUS.iterdir() if d.is_dir()}
    assert kinds == set(COMMANDS)
    assert len(CASES) >= 50


@pytest.mark.parametrize(("kind", "name"), CASES)
def test_bad_file_exits_2_naming_it(kind: str, name: str, tmp_path: Path) -> None:
    path = CORPUS / kind / name
    code, stdout, stderr = invoke(COMMANDS[kind](path, tmp_path))
    assert code == 2, (stdout, stderr)
    message = " ".join(stderr.split())
    assert message.startswith("error:") and NAMES_THE_FIELD.get(f"{kind}/{name}", name) in message, message
    assert "TTFT" not in stdout  # no metrics table: nothing was simulated on bad input
    assert not (tmp_path / "report.html").exists()


def test_compare_with_bad_reports_exits_2_naming_each(tmp_path: Path) -> None:
    for bad in sorted((CORPUS / "report").iterdir()):
        code, _, stderr = invoke(["compare", str(bad), str(bad)])
        assert code == 2 and bad.name in " ".join(stderr.split()), stderr


@pytest.mark.parametrize("name", ["[red]trace[red].jsonl", "[bold]", "a]b[c.csv", "[link=x]y.jsonl"])
def test_console_markup_in_a_file_name_is_shown_literally(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    shutil.copy(CORPUS / "trace" / "nested_hash_ids_square.jsonl", path)
    code, _, stderr = invoke(["run", str(path)])
    assert code == 2 and name in " ".join(stderr.split()), stderr
