"""``llmreplay synth``: write a synthetic trace."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from llmreplay.errors import InputError
from llmreplay.fileio import check_writable
from llmreplay.trace import synth
from llmreplay.trace.synth import write_trace

KINDS = ("poisson", "bursty", "agentic")


def execute_synth(kind: str, output: Path, rate: float, duration: float | None, num_requests: int | None,
                  isl: str | None, osl: str | None, cv: float | None, seed: int, console: Console) -> None:
    if kind not in KINDS:
        raise InputError(f"synth: unknown kind '{kind}'; choose one of {', '.join(KINDS)}.")
    if duration is None and num_requests is None:
        raise InputError("synth: give --duration (seconds) or --num-requests.")
    check_writable(output, "--output")  # before generating: a bad path fails at once
    trace = synth.generate(kind, rate=rate, duration_s=duration, num_requests=num_requests, isl=isl, osl=osl,
                           cv=cv, seed=seed)
    write_trace(trace, output)  # atomic: a temporary file, then a rename
    console.print(f"wrote {len(trace):,} requests to {output}", highlight=False, markup=False)
