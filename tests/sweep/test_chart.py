"""The sweep chart: units on every axis (a swept field's unit from its definition), share axes from zero with the
goal line, and a series at zero (no reversals) still visible above the axis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmreplay.sweep.chart import field_unit, write_chart
from llmreplay.sweep.grid import expand
from llmreplay.sweep.spec import load_sweep


def test_a_fields_unit_comes_from_its_definition() -> None:
    assert field_unit("extra_engine_args.startup_time") == "s"
    assert field_unit("planner_config.load_adjustment_interval") == "s"
    assert field_unit("sla_ttft_ms") == "ms"
    assert field_unit("extra_engine_args.max_num_batched_tokens") == "tokens"
    assert field_unit("num_workers") is None


def _figure(html: str) -> dict[str, Any]:
    """The data and layout plotly.js is given (parsed, not pattern-matched: they are JSON)."""
    start = html.index("Plotly.newPlot(")
    pos = html.index(",", html.index('"', start + 15) + 1) + 1
    dec = json.JSONDecoder()
    data, pos = dec.raw_decode(html, pos + len(html[pos:]) - len(html[pos:].lstrip()))
    pos = html.index(",", pos) + 1
    layout, _ = dec.raw_decode(html, pos + len(html[pos:]) - len(html[pos:].lstrip()))
    return {"data": data, "layout": layout}


def test_chart_axes(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    trace = Path(__file__).resolve().parents[2] / "src" / "llmreplay" / "data" / "demo_mooncake_conversation.jsonl"
    f.write_text(f"base:\n  trace: {trace}\naxes:\n  extra_engine_args.startup_time: [0, 30, 60]\n")
    sweep = load_sweep(f)
    rows = [{"point": p.index, "extra_engine_args.startup_time": p.overrides["extra_engine_args.startup_time"],
             "status": "ok", "sla.attainment": 0.95 - 0.01 * k, "sla.goodput_rps": 2.0, "cost.gpu_hours": 1.0,
             "cost.replica_transitions": 4, "cost.reversals": 0, "ttft_ms.avg": 500.0, "ttft_ms.p90": 900.0,
             "itl_ms.avg": 20.0, "itl_ms.p90": 30.0}
            for k, p in enumerate(expand(sweep))]
    html = write_chart(tmp_path / "c.html", rows, sweep).read_text()
    fig = _figure(html)
    lay = fig["layout"]
    xtitles = [lay[k]["title"]["text"] for k in lay if k.startswith("xaxis") and lay[k].get("title")]
    assert xtitles and all(t == "extra_engine_args.startup_time (s)" for t in xtitles)
    ytitles = {lay[k]["title"]["text"] for k in lay if k.startswith("yaxis") and lay[k].get("title")}
    assert ytitles == {"ms", "share of requests", "req/s", "GPU-h", "count"}
    for k in (k for k in lay if k.startswith("yaxis")):
        lo, hi = lay[k]["range"]
        assert lo < 0 <= hi  # from zero, with room below it
    assert any(s.get("y0") == 0.9 for s in lay.get("shapes", []))  # the goal line
    reversals = next(t for t in fig["data"] if t["name"] == "cost.reversals")
    assert reversals["mode"] == "lines+markers" and reversals["marker"]["size"] >= 7
