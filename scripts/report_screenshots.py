"""Refresh the report screenshots in docs/img/ (headless Chromium through Playwright).

    PYTHONPATH=src python scripts/report_screenshots.py [--shared ../shared/traces]

Draws: the demo with 3 workers and an SLA (docs/img/report-demo.png), the SLA planner on the Mooncake
conversation hour (docs/img/report-agg.png) and examples/startup_sweep.yaml on a 60 s grid
(docs/img/startup-sweep.png); without the shared traces, only the demo and a demo sweep. Each page is opened
from disk, as a user would.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # scripts/ sits at the repository root
IMG = REPO / "docs" / "img"
PLANNER = REPO / "examples" / "demo_planner.json"


def llmreplay(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "llmreplay", *args], check=True, stdout=subprocess.DEVNULL)


def shoot(html: Path, png: Path, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless"])
        page = browser.new_page(viewport={"width": 1500, "height": height})
        page.goto(html.as_uri())
        page.wait_for_function("window.llmreplayRendered === true || document.querySelector('.plotly') !== null")
        page.wait_for_timeout(500)
        page.screenshot(path=str(png), full_page=False)
        browser.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "traces")
    args = ap.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        llmreplay("run", "--demo", "--num-workers", "3", "--sla-ttft-ms", "1500", "--sla-itl-ms", "50",
                  "--report-html", str(t / "demo.html"))
        shoot(t / "demo.html", IMG / "report-demo.png", 1500)
        conv = args.shared / "mooncake_fast25_conversation_trace.jsonl"
        if conv.exists():
            llmreplay("run", str(conv), "--num-workers", "2", "--sla-ttft-ms", "2500", "--sla-itl-ms", "50",
                      "--planner-config", str(PLANNER), "--report-html", str(t / "conv.html"))
            shoot(t / "conv.html", IMG / "report-agg.png", 1900)
        sweep = t / "sweep.yaml"
        example = (REPO / "examples" / "startup_sweep.yaml").read_text()
        if conv.exists():  # the example on the conversation hour, on a coarser grid (6 points, not 31)
            sweep.write_text(example.replace(
                "../../shared/traces/mooncake_fast25_conversation_trace.jsonl", str(conv)).replace(
                "0..300 step 10", "0..300 step 60"))
        else:  # the demo trace under the demo planner
            demo = REPO / "src" / "llmreplay" / "data" / "demo_mooncake_conversation.jsonl"
            sweep.write_text(f"base:\n  trace: {demo}\n  num_workers: 1\n  planner_config: {PLANNER}\n"
                             "axes:\n  extra_engine_args.startup_time: [0, 30, 60, 90, 120]\n")
        llmreplay("sweep", str(sweep), "--out", str(t / "sweep"), "--quiet", "--jobs", "2")
        shoot(t / "sweep" / "sweep.html", IMG / "startup-sweep.png", 1100)


if __name__ == "__main__":
    main()
