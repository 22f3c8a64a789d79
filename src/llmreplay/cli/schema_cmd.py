"""``llmreplay schema``: print the JSON Schema of the run report (the file shipped in the package)."""

from __future__ import annotations

from rich.console import Console

from llmreplay.report.model import shipped_schema_text


def execute_schema(console: Console) -> None:
    console.print(shipped_schema_text(), end="", markup=False, highlight=False, soft_wrap=True)
