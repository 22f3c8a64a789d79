"""The interactive HTML report: one self-contained file drawn from the typed run report alone.

The work is split by job: :mod:`~llmreplay.report.data` (the numbers behind each chart and card),
:mod:`~llmreplay.report.figures` (the Plotly figures), :mod:`~llmreplay.report.page` (the page around them) with
:mod:`~llmreplay.report.assets` (style sheet and script) and :mod:`~llmreplay.report.timeaxis` (one time format).
"""

from __future__ import annotations

from llmreplay.report.page import render_html, write_html_report

__all__ = ["render_html", "write_html_report"]
