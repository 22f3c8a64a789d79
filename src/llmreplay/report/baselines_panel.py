"""The report's baselines panel: the planner's point among the fixed fleets and the hindsight schedule on a
GPU-hours × SLA-attainment chart. Up and to the left is better; a planner right of or below a fixed fleet
pays for autoscaling without earning it. With one component (agg) a dotted line joins the fixed fleets: a point
on it is what time-sharing two fixed fleets would give, so a planner under the line mixes fleet sizes worse
than a fixed schedule would."""

from __future__ import annotations

import html
import json
from typing import Any

PLANNER_COLOUR = "#d62728"
FIXED_COLOUR = "#7f7f7f"
BEST_COLOUR = "#1f77b4"
HINDSIGHT_COLOUR = "#2ca02c"


def _workers(d: dict[str, Any]) -> str:
    return " + ".join(f"{n} {c}" for c, n in (d.get("workers") or {}).items())


def baselines_figure(block: dict[str, Any]) -> dict[str, Any]:
    """Plotly figure (data + layout) of a report's ``baselines`` block."""
    fixed = sorted(block.get("fixed_runs") or [], key=lambda r: r["gpu_hours"])
    # agg: fleets of 1, 2, … workers, whose joining line is the time-shared frontier; disagg pairs are no line
    line = bool(fixed) and all(len(r.get("workers") or {}) == 1 for r in fixed)
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines+markers+text" if line else "markers+text", "name": "fixed fleets",
        "line": {"color": FIXED_COLOUR, "dash": "dot", "width": 1},
        "x": [r["gpu_hours"] for r in fixed], "y": [r["attainment"] for r in fixed],
        "text": [_workers(r) for r in fixed], "textposition": "bottom right", "textfont": {"size": 10},
        "marker": {"color": FIXED_COLOUR, "size": 7},
        "hovertemplate": "fixed %{text}<br>%{x:.3f} GPU-h<br>%{y:.1%}<extra></extra>",
    }]
    best = block.get("best_fixed") or {}
    for key, label in (("at_planner_attainment", "best fixed at the planner's attainment"),
                       ("at_goal", "best fixed reaching the goal")):
        b = best.get(key) or {}
        if b.get("reached"):
            data.append({"type": "scatter", "mode": "markers", "name": f"{label}: {_workers(b)}",
                         "x": [b["gpu_hours"]], "y": [b["attainment"]],
                         "marker": {"color": BEST_COLOUR, "size": 13, "symbol": "square-open", "line": {"width": 2}},
                         "hovertemplate": f"{html.escape(label)}<br>%{{x:.3f}} GPU-h<br>%{{y:.1%}}<extra></extra>"})
    h = block.get("hindsight")
    if h is not None and h.get("gpu_hours") is not None:
        met = "met" if h["met"] else "missed"
        data.append({"type": "scatter", "mode": "markers", "name": f"hindsight schedule (verified, goal {met})",
                     "x": [h["gpu_hours"]], "y": [h["attainment"]],
                     "marker": {"color": HINDSIGHT_COLOUR, "size": 15, "symbol": "star"},
                     "hovertemplate": f"hindsight, {h['replica_changes']} changes<br>%{{x:.3f}} GPU-h<br>"
                                      "%{y:.1%}<extra></extra>"})
    p = block["planner"]
    data.append({"type": "scatter", "mode": "markers", "name": "planner (this run)", "x": [p["gpu_hours"]],
                 "y": [p["attainment"]], "marker": {"color": PLANNER_COLOUR, "size": 15, "symbol": "diamond"},
                 "hovertemplate": f"planner, {p['replica_changes']} changes<br>%{{x:.3f}} GPU-h<br>"
                                  "%{y:.1%}<extra></extra>"})
    goal = float(block["goal"])
    layout = {
        "height": 380, "margin": {"l": 60, "r": 20, "t": 20, "b": 50},
        "xaxis": {"title": {"text": "GPU-hours"}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": "SLA attainment"}, "tickformat": ".0%"},
        "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": goal, "y1": goal,
                    "line": {"dash": "dash", "color": "#999", "width": 1}}],
        "annotations": [{"text": f"goal {goal:.0%}", "xref": "paper", "x": 1, "y": goal, "xanchor": "right",
                         "yanchor": "bottom", "showarrow": False, "font": {"size": 11, "color": "#666"}}],
        "legend": {"orientation": "h", "y": -0.2},
    }
    return {"data": data, "layout": layout}


def baselines_section(block: dict[str, Any]) -> str:
    """The HTML section of a report's ``baselines`` block (empty string when it is empty, or when it lacks the
    planner's point and the goal the chart is drawn around, as a block written by another version may)."""
    if not block or block.get("planner") is None or block.get("goal") is None:
        return ""
    fig = baselines_figure(block)
    joined = (" The dotted line joins the fixed fleets: time-sharing two of them."
              if fig["data"][0]["mode"].startswith("lines") else "")
    payload = json.dumps(fig["data"], separators=(",", ":"), allow_nan=False)
    layout = json.dumps(fig["layout"], separators=(",", ":"), allow_nan=False)
    js = (f'Plotly.newPlot("llmreplay-baselines",{payload},{layout},{{"responsive":true,"displaylogo":false}});'
          ).replace("</", "<\\/")
    return ('<section id="baselines"><h2>Does the planner earn its keep? Baselines</h2>'
            f'<p class="hint">Each point is a replay of this trace: fixed fleets, the hindsight schedule (knowing '
            f'the whole trace; verified by replay) and this run. Up and to the left is better.{joined} '
            f'{block.get("replays", "?")} replays, {float(block.get("wall_s") or 0):.1f} s.</p>\n'
            '<div id="llmreplay-baselines" class="plot"></div>\n'
            f"<script>{js}</script>\n</section>\n")
