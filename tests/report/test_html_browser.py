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
