"""``--requests-out x.jsonl`` is written a slice of rows at a time (bounded memory for a million requests); the
file is the same whatever the slice size: one JSON object per request, in request order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.metrics import records


def test_requests_file_is_the_same_written_in_slices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def write(name: str) -> bytes:
        out = tmp_path / name
        res = CliRunner().invoke(app, ["run", "--demo", "--max-requests", "100", "--quiet", "--no-progress",
                                       "--requests-out", str(out)])
        assert res.exit_code == 0, res.output
        return out.read_bytes()

    whole = write("whole.jsonl")
    monkeypatch.setattr(records, "JSONL_ROWS_PER_WRITE", 7)  # 100 rows: 14 full slices and a partial one
    sliced = write("sliced.jsonl")
    assert sliced == whole
    rows = [json.loads(line) for line in whole.decode().splitlines()]
    assert [r["request"] for r in rows] == list(range(100))
    assert all(r["status"] == "completed" and r["ttft_ms"] > 0 for r in rows)
