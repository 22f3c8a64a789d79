"""``llmreplay report``: redraw the interactive HTML report from a saved run report JSON."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from llmreplay.cli.compare_cmd import load_report
from llmreplay.errors import InputError
from llmreplay.fileio import atomic_write, check_writable
from llmreplay.report.html import render_html

PLOTLYJS_CHOICES = ("inline", "cdn")


def execute_report(run_json: Path, output: Path, plotlyjs: str, console: Console) -> Path:
    """Load ``run_json`` (an ``llmreplay.run/1`` report), write the HTML report to ``output``, print its path."""
    if plotlyjs not in PLOTLYJS_CHOICES:
        raise InputError(f"--plotlyjs must be 'inline' (self-contained, works offline) or 'cdn' (smaller file, "
                         f"needs network to view), not {plotlyjs!r}.")
    if output.is_dir():
        output = output / (run_json.stem + ".html")
    if output.resolve() == run_json.resolve():
        raise InputError(f"-o {output} is the run report being read; writing it would destroy it. Choose another "
                         "output path.")
    check_writable(output, "-o/--output")
    report = load_report(run_json)
    t0 = time.perf_counter()
    path = atomic_write(output, render_html(report, plotlyjs), "-o/--output")
    size_mb = path.stat().st_size / 1e6
    console.print(f"HTML report: {path} ({size_mb:.1f} MB, {time.perf_counter() - t0:.2f} s"
                  + (", plotly.js from the CDN" if plotlyjs == "cdn" else "") + ")", highlight=False, markup=False)
    return path
