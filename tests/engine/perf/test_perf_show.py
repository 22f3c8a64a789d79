"""``llmreplay perf show``: the step-time tables and the engine capacity the planner would compute."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from llmreplay.cli.perf_cmd import build_engine, capacities, execute_perf_show
from llmreplay.engine.perf import aic
from llmreplay.planner import capacity as cap

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "measured_steps.csv"


def show(*, engine_args: str | None = None, isl: float = 3000, osl: float = 150, itl: float = 50,
         ttft: float = 500, html: Path | None = None, as_json: bool = True) -> Any:
    buf = io.StringIO()
    execute_perf_show(engine_args, isl, osl, itl, ttft, html, "cdn", as_json, 8, Console(file=buf, width=200))
    return json.loads(buf.getvalue()) if as_json else buf.getvalue()


def test_default_engine_json() -> None:
    out = show()
    assert out["perf_model"].startswith("roofline") and "H200 SXM" in out["hardware"]
    assert out["kv_tokens"] == 892_448
    surf = out["surface"]
    assert surf["prefill_tokens"][-1] == 8192 and surf["decode_batches"][-1] == 256
    assert all(a < b for a, b in zip(surf["prefill_ms"][0], surf["prefill_ms"][0][1:], strict=False))
    rows = {(r["role"], r["source"]): r for r in out["capacity"]}
    assert set(rows) == {(role, src) for role in ("prefill", "decode", "agg")
                         for src in ("perf model", "planner regression")}
    agg = rows[("agg", "perf model")]
    assert agg["meets_sla"] and agg["step_ms"] <= 50
    assert agg["rps"] == pytest.approx(agg["batch"] / (150 * agg["step_ms"] / 1e3))


def test_capacity_matches_the_planner_functions_by_hand() -> None:
    """The agg row from the perf model is capacity.agg_capacity over the perf model's own mixed step."""
    engine = build_engine('{"num_gpu_blocks": 4000, "max_num_seqs": 64}')
    rows = {(r.role, r.source): r for r in capacities(engine, 2000, 200, 0.05, 0.5)}
    kv = 4000 * 16
    x = rows[("agg", "perf model")].batch
    assert x == min(kv // 2200, 64)  # KV-bound here: 29
    prefill = min(8192 - x, math.ceil(x * 2000 / 200))
    t = engine.perf.step_s([prefill], [(2000 - prefill) // 2], x, round(x * 2100))
    assert rows[("agg", "perf model")].step_ms == pytest.approx(t * 1e3, rel=1e-3)
    pre = cap.prefill_time(2000, 8192, lambda n, c: engine.perf.step_s([int(n)], [int(c)], 0, 0))
    assert rows[("prefill", "perf model")].rps == pytest.approx(1 / pre)


def test_table_perf_model_and_html(tmp_path: Path) -> None:
    html = tmp_path / "surface.html"
    text = show(engine_args=json.dumps({"perf_model": {"kind": "table", "path": str(EXAMPLE)}}), html=html,
                as_json=False)
    assert "table (measured_steps.csv" in text and "Engine capacity at ISL 3,000" in text
    assert "planner regression" in text and "HTML:" in text
    page = html.read_text()
    assert "cdn.plot.ly" in page and "Decode step (ms): batch" in page and "ITL SLA 50 ms" in page


def test_bad_input_exits_2_without_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "llmreplay", "perf", "show", "--isl", "0"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and "'--isl'" in out.stderr and ">= 1" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.skipif(not aic.aic_available(), reason="AIConfigurator not installed (pip install 'llmreplay[aic]')")
def test_worked_example_with_aic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The planner issue's example through the command a user would type (docs/validation-aic.md)."""
    monkeypatch.setenv("LLMREPLAY_CACHE_DIR", str(tmp_path))
    out = show(engine_args=json.dumps({
        "perf_model": "aic", "aic_backend": "vllm", "aic_system": "h200_sxm",
        "aic_model_path": "nvidia/Llama-3.1-8B-Instruct-FP8", "aic_tp_size": 1, "max_num_batched_tokens": 8192,
        "num_gpu_blocks": 16384}), isl=8844, osl=173)
    assert out["kv_tokens"] == 262_144 and "aic (AIConfigurator" in out["perf_model"]
    rows = {(r["role"], r["source"]): r for r in out["capacity"]}
    direct, fitted = rows[("agg", "perf model")], rows[("agg", "planner regression")]
    assert direct["batch"] == fitted["batch"] == 29
    assert direct["rps"] == pytest.approx(4.77, rel=0.01)
    assert fitted["rps"] == pytest.approx(4.48, rel=0.02)
