"""One run, every view: the summary table, the JSON report, ``compare`` and the HTML report's data show the same
attainment and TTFT/ITL percentiles, because they all read the metric definitions (issue #12)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.metrics import definitions as d
from llmreplay.report import data as rd
from llmreplay.report import page as rp
from llmreplay.report.model import RunReport, load_report

RUN = ("run", "--demo", "--max-requests", "300", "--num-workers", "3", "--warmup-s", "30")


def llmreplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmreplay", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    """Two runs of the same trace, judged on different TTFT SLAs; the first run's printed summary."""
    tmp = tmp_path_factory.mktemp("truth")
    a, b = tmp / "strict.json", tmp / "loose.json"
    out = llmreplay(*RUN, "--sla-ttft-ms", "1500", "--sla-itl-ms", "30", "--report-json", str(a))
    assert out.returncode == 0, out.stderr
    res = llmreplay(*RUN, "--sla-ttft-ms", "2500", "--sla-itl-ms", "30", "--report-json", str(b))
    assert res.returncode == 0, res.stderr
    return out.stdout, a, b


def _row(text: str, label: str) -> str:
    line = next(ln for ln in text.splitlines() if label in ln)
    return line


def test_table_json_compare_and_html_agree(runs: tuple[str, Path, Path]) -> None:
    table, a, b = runs
    report = load_report(a)
    m, sla = report.metrics, report.sla
    assert sla.attainment is not None and 0 < sla.attainment < 1  # a run that is neither perfect nor hopeless
    shown = d.SLA_ATTAINMENT.format(sla.attainment)
    # the JSON is the source: the table, compare and the HTML show exactly its value under the one display rule
    assert shown in _row(table, "SLA Attainment")
    res = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert res.exit_code == 0, res.output
    assert re.search(r"SLA attainment †\s+│\s+" + re.escape(shown), res.output), _row(res.output, "SLA attainment")
    page = rp.render_html(report, plotlyjs="cdn")
    assert f"SLA missed: {shown}" in page or f"SLA met: {shown}" in page
    assert f'">{shown}</span>' in page  # the attainment card
    for metric, name in ((d.TTFT, "Time to First Token"), (d.ITL, "Inter Token Latency")):
        stats = m.stats(metric.key)
        row = _row(table, name)
        for stat in ("p50", "p90", "p99"):
            assert metric.format(stats.at(stat)) in row, (name, stat, row)
        label = "TTFT" if metric is d.TTFT else "ITL"
        for stat in ("p90", "p99"):
            assert metric.format(stats.at(stat)) in _row(res.output, f"{label} {stat} (ms)")
        # the HTML's card shows the percentile the SLA is judged on (p90), and its CDF passes through the same
        # p90 (same requests: warm-up left out of both)
        assert metric.format(stats.p90, with_unit=True) in page
        cdf = {c.metric: c for c in rd.cdf_data(report)}[metric.key]
        assert cdf.values[90] == pytest.approx(stats.p90, abs=1e-3)
        assert cdf.within_sla == (sla.within_ttft if metric is d.TTFT else sla.within_itl)


def test_within_shares_bound_attainment(runs: tuple[str, Path, Path]) -> None:
    report = load_report(runs[1])
    s = report.sla
    assert s.attainment is not None and s.within_ttft is not None and s.within_itl is not None
    assert s.within_ttft_and_itl == pytest.approx(s.attainment)  # no E2E SLA: good ⇔ within both
    assert s.attainment <= min(s.within_ttft, s.within_itl)
    assert s.within_ttft + s.within_itl - s.within_ttft_and_itl <= 1 + 1e-12
    assert s.population == report.requests.total - _warmup_requests(report)


def _warmup_requests(report: RunReport) -> int:
    return report.requests.total - (report.sla.population or 0)


def test_report_json_is_exactly_the_typed_model(runs: tuple[str, Path, Path]) -> None:
    """Every field the run writes is a field of the model: validating and dumping again changes nothing."""
    data = json.loads(runs[1].read_text())
    assert RunReport.model_validate(data).to_json_dict() == data
