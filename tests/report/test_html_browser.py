"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright.

Opens each report from disk (no network), checks there is no JavaScript error, that the expected panel titles
are drawn, and that zooming the first chart's time range zooms every chart; saves screenshots to
``tests/report/artifacts/``. Skips only when Chromium is not installed (``.ci/run`` installs it with apt).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from reportfixtures import make_report, real_conv_report

from llmreplay.report import data as rd
from llmreplay.report import figures as rf
from llmreplay.report import page as rp
from llmreplay.report import timeaxis as rt
from llmreplay.report.model import RunReport

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str | None:
    for cand in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if cand and Path(cand).exists():
            return cand
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    exe = _chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it): browser test skipped")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _open(browser: Browser, report: RunReport, tmp_path: Path, name: str) -> tuple[Page, list[str]]:
    path = rp.write_html_report(report, tmp_path / f"{name}.html")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    # no network: any request that is not the file itself fails the test
    page.route(re.compile(r"^https?://"), lambda route: (errors.append(f"network: {route.request.url}"),
                                                         route.abort()))
    page.goto(path.as_uri())
    page.wait_for_function("window.llmreplayRendered === true && window.llmreplayReport !== undefined")
    return page, errors


def _titles(page: Page, div: str) -> list[str]:
    titles: list[str] = page.evaluate(
        """(div) => (document.getElementById(div).layout.annotations || [])
                    .filter(a => (a.name || '').startsWith('title:'))
                    .map(a => a.text.replace(/<[^>]+>/g, ''))""", div)
    return titles


def _x_ranges(page: Page) -> dict[str, list[float]]:
    ranges: dict[str, list[float]] = page.evaluate(
        """() => { const gd = document.getElementById('llmreplay-timeline'); const out = {};
                   for (const k of Object.keys(gd._fullLayout)) {
                     if (/^xaxis\\d*$/.test(k)) out[k] = gd._fullLayout[k].range.map(Number); }
                   return out; }""")
    return ranges


def _layout_ranges(page: Page) -> dict[str, list[float] | None]:
    ranges: dict[str, list[float] | None] = page.evaluate(
        """() => { const gd = document.getElementById('llmreplay-timeline'); const out = {};
                   for (const k of Object.keys(gd.layout)) {
                     if (/^xaxis\\d*$/.test(k)) out[k] = gd.layout[k].range ? gd.layout[k].range.map(Number) : null; }
                   return out; }""")
    return ranges


CASES = {
    "agg": lambda: make_report("agg"),
    "agg-planner-flapping": lambda: make_report("agg_planner", n_bins=120),
    "disagg-planner": lambda: make_report("disagg"),
    "agg-40-workers": lambda: make_report("agg", workers=40),
}


@pytest.mark.parametrize("name", list(CASES))
def test_report_in_chromium(browser: Browser, tmp_path: Path, name: str) -> None:
    report = RunReport.model_validate(CASES[name]())
    page, errors = _open(browser, report, tmp_path, name)
    try:
        expected = [p.title for p in rf.build_panels(report)]
        assert _titles(page, "llmreplay-timeline") == expected
        assert [t.removesuffix(" CDF") for t in _titles(page, "llmreplay-cdfs")] == [
            c.title for c in rd.cdf_data(report)]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        before = _x_ranges(page)
        assert len(before) == len(expected)
        end = rd.horizon_s(report)
        for r in before.values():
            assert r == pytest.approx([0, end])
        a, b = round(end * 0.25, 3), round(end * 0.5, 3)
        page.evaluate("([a, b]) => Plotly.relayout(document.getElementById('llmreplay-timeline'), "
                      "{'xaxis.range': [a, b]})", [a, b])
        page.wait_for_timeout(200)
        after = _x_ranges(page)
        assert set(after) == set(before)
        for k, r in after.items():
            assert r == pytest.approx([a, b]), k
        for k, r in _layout_ranges(page).items():
            assert r == pytest.approx([a, b]), k
        # the ticks were relabelled for the new range, as elapsed time (never dates)
        ticks: list[str] = page.evaluate(
            "() => Array.from(document.querySelectorAll('#llmreplay-timeline .xtick text')).map(t => t.textContent)")
        assert ticks and all(re.fullmatch(r"\d+:\d\d(:\d\d)?(\.\d+)?", t) for t in ticks), ticks[:10]
        assert page.inner_text("#llmreplay-range").startswith("showing " + rt.format_elapsed(a)[:2])
        if name == "agg-planner-flapping":
            page.screenshot(path=str(ARTIFACTS / f"{name}-zoomed.png"), full_page=True)
        page.click("#llmreplay-reset")
        page.wait_for_timeout(200)
        for r in _x_ranges(page).values():
            assert r == pytest.approx([0, end])
        assert errors == []
    finally:
        page.close()


def test_real_conversation_report_renders(browser: Browser, tmp_path: Path,
                                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """Render time is a benchmark number, not a test bar: a busy 2-core machine took 6-7 s here."""
    report = RunReport.model_validate(real_conv_report(tmp_path_factory.getbasetemp()))
    page, errors = _open(browser, report, tmp_path, "conv")
    try:
        assert "SLA attainment per interval (share of requests meeting every SLA)" in _titles(
            page, "llmreplay-timeline")
        text = page.inner_text("header")
        assert re.search(r"SLA (MET|MISSED)", text)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "conv.png"), full_page=True)
        assert errors == []
    finally:
        page.close()


# ------------------------------------------------------------------------------------------------ issue #17
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunReport]:
    """The demo as a user runs it: fixed workers with an SLA, and the planner example (SLA from its targets)."""
    from typer.testing import CliRunner

    from llmreplay.cli.app import app
    from llmreplay.report.model import load_report

    tmp = tmp_path_factory.mktemp("demo")
    runs = {"fixed": ["--num-workers", "3", "--sla-ttft-ms", "1500", "--sla-itl-ms", "50"],
            "planner": ["--num-workers", "1", "--planner-config", str(REPO / "examples" / "demo_planner.json")],
            "no-sla": ["--num-workers", "3"]}
    out = {}
    for name, args in runs.items():
        res = CliRunner().invoke(app, ["run", "--demo", *args, "--report-json", str(tmp / f"{name}.json")])
        assert res.exit_code == 0, res.output
        out[name] = load_report(tmp / f"{name}.json")
    return out


def _percent(text: str) -> float:
    m = re.search(r"(\d+(?:\.\d+)?) %", text)
    assert m, text
    return float(m.group(1)) / 100


def test_verdict_split_reads_and_sums(browser: Browser, tmp_path: Path, demo_runs: dict[str, RunReport]) -> None:
    report = demo_runs["fixed"]
    page, errors = _open(browser, report, tmp_path, "verdict")
    try:
        spans = page.eval_on_selector_all("#llmreplay-split .split",
                                          "els => els.map(e => [e.dataset.key, e.textContent])")
        shown = {k: _percent(t) for k, t in spans}
        assert set(shown) == {"within_ttft", "within_itl", "within_ttft_and_itl", "missed_both"}
        # inclusion–exclusion over the same requests: TTFT ∪ ITL ∪ neither is everyone (display truncates 0.1 %)
        total = shown["within_ttft"] + shown["within_itl"] - shown["within_ttft_and_itl"] + shown["missed_both"]
        assert total == pytest.approx(1.0, abs=0.003)
        assert shown["within_ttft_and_itl"] == pytest.approx(report.sla.attainment, abs=0.001)
        head = page.inner_text("#llmreplay-verdict")
        assert f"{_percent_text(report.sla.attainment)} of requests within SLA" in head
        # the reasons add up to the misses, each with the windows where it happened
        misses = report.sla.miss_reasons or []
        assert misses and sum(m.requests for m in misses) == (report.sla.population or 0) - (
            report.sla.good_requests or 0)
        items = page.eval_on_selector_all("#llmreplay-misses li", "els => els.map(e => e.textContent)")
        assert items[0].startswith(misses[0].reason) and re.search(r"\d+:\d\d–\d+:\d\d", items[0])
        # the TTFT card shows p90 (the percentile the 90 % goal judges), red when fewer than 90 % met the SLA
        card = page.inner_text(".cards")
        assert "TTFT P90" in card.upper()
        assert errors == []
    finally:
        page.close()


def _percent_text(v: float | None) -> str:
    from llmreplay.metrics.definitions import format_share

    assert v is not None
    return format_share(v)


def _hover_text(page: Page, trace_index: int, point: int, trace_name: str) -> str:
    """The hover label of one point. Plotly throttles hovers (a hover right after another is queued), so the
    hover is re-issued until the label shown is this trace's, not the previous one's."""
    page.wait_for_function(
        """([i, p, name]) => { const gd = document.getElementById('llmreplay-timeline'); const tr = gd.data[i];
             Plotly.Fx.hover(gd, [{curveNumber: i, pointNumber: p}], (tr.xaxis || 'x') + (tr.yaxis || 'y'));
             const el = document.querySelector('#llmreplay-timeline .hoverlayer');
             return el !== null && el.textContent.includes(name); }""", arg=[trace_index, point, trace_name])
    text: str = page.evaluate("() => document.querySelector('#llmreplay-timeline .hoverlayer').textContent")
    return text


def test_decision_hover_carries_its_estimates_and_click_highlights(
        browser: Browser, tmp_path: Path, demo_runs: dict[str, RunReport]) -> None:
    report = demo_runs["planner"]
    page, errors = _open(browser, report, tmp_path, "decisions")
    try:
        traces = page.evaluate("() => document.getElementById('llmreplay-timeline').data.map("
                               "t => [t.name, (t.meta || {}).decision || null, (t.x || []).length])")
        i = next(k for k, (name, kind, n) in enumerate(traces) if kind == "load" and name == "scale_up" and n)
        text = _hover_text(page, i, 0, "scale_up")
        assert "scale_up" in text and re.search(r"^\d+:\d\d", text.strip()), text
        assert "estimated TTFT" in text and "SLA 2,000 ms" in text and "replicas" in text, text
        x = page.evaluate("(i) => document.getElementById('llmreplay-timeline').data[i].x[0]", i)
        page.evaluate("""(i) => { const gd = document.getElementById('llmreplay-timeline');
                         gd.emit('plotly_click', {points: [{x: gd.data[i].x[0], data: gd.data[i]}]}); }""", i)
        page.wait_for_function("window.llmreplayReport.highlighted !== null")
        lo, hi = page.evaluate("() => window.llmreplayReport.highlighted")
        assert hi == pytest.approx(x) and hi - lo == pytest.approx(5.0)  # the load interval it looked at
        shapes = page.evaluate("() => document.getElementById('llmreplay-timeline').layout.shapes")
        assert len(shapes) == 1 and shapes[0]["yref"] == "paper"  # across every linked chart
        assert page.inner_text("#llmreplay-highlight").startswith("highlighted")
        # every other hover starts with the time in the same m:ss format as the axes
        j = next(k for k, (name, kind, n) in enumerate(traces) if name == "observed avg" and n)
        assert re.match(r"\s*\d+:\d\d · observed avg", _hover_text(page, j, 0, "observed avg"))
        assert errors == []
    finally:
        page.close()


def test_demo_request_rate_is_a_rate_not_a_comb(browser: Browser, tmp_path: Path,
                                                demo_runs: dict[str, RunReport]) -> None:
    """The demo trace's timestamps step by 3 s: intervals are 3 s (or a multiple), so an interval is empty only
    where the trace has no arrival in it; the interval control merges intervals with the right weights."""
    import json

    report = demo_runs["fixed"]
    ts = report.timeseries
    assert ts.arrival_quantum_s == 3.0 and ts.bin_s % 3.0 == 0
    stamps = [json.loads(ln)["timestamp"] / 1000 for ln in
              (REPO / "src" / "llmreplay" / "data" / "demo_mooncake_conversation.jsonl").read_text().splitlines()]
    steps_without_arrivals = round(max(stamps) / 3) + 1 - len({round(s / 3) for s in stamps})
    page, errors = _open(browser, report, tmp_path, "rate")
    try:
        rate: list[float | None] = page.evaluate(
            """() => { const gd = document.getElementById('llmreplay-timeline');
                       const tr = gd.data.find(t => (t.meta || {}).series === 'arrival_rps');
                       return tr.y.filter((v, k) => k % 2 === 0); }""")
        drawn = [v for v in rate if v is not None]
        in_span = [v for v, t in zip(drawn, ts.t_s, strict=False) if t + ts.bin_s <= max(stamps) + 1.5]
        assert sum(1 for v in in_span if v == 0) <= steps_without_arrivals
        page.select_option("#llmreplay-interval", "5")
        page.wait_for_function(f"window.llmreplayReport.intervalS > {ts.bin_s}")
        merged: list[float | None] = page.evaluate(
            """() => { const gd = document.getElementById('llmreplay-timeline');
                       return gd.data.find(t => (t.meta || {}).series === 'arrival_rps').y; }""")
        values = [v for v in merged[::2] if v is not None]
        width = 5 * ts.bin_s
        # a merged interval's rate is its arrivals / its width
        assert values[0] == pytest.approx(sum(ts.arrivals[:5]) / width)
        assert errors == []
    finally:
        page.close()


def test_labels_follow_the_run(browser: Browser, tmp_path: Path, demo_runs: dict[str, RunReport]) -> None:
    page, errors = _open(browser, demo_runs["no-sla"], tmp_path, "no-sla")
    try:
        titles = _titles(page, "llmreplay-timeline")
        assert not any("SLA" in t for t in titles), titles
        assert "dashed line" not in page.inner_text("#cdfs")
        assert "NO SLA" in page.inner_text("#llmreplay-verdict")
        body = page.inner_text("body")
        assert "utilisation" not in body.lower()
        assert errors == []
    finally:
        page.close()
