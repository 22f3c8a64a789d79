"""``OUT/sweep.html``: each headline metric against the first axis, one line per value of the other axes.

The questions a sensitivity study asks are "where does the SLA break" and "what does it cost", so latency
panels carry their SLA line and cost panels sit beside them on the same x axis. Repeats of a point are
averaged; failed points leave a gap rather than a misleading zero.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from statistics import fmean
from typing import Any

from llmreplay.fileio import atomic_write
from llmreplay.sweep.spec import Sweep

#: (panel title, [(column, dash)], SLA column or None, hover format, y-axis title with its unit). Every y axis
#: starts at zero (a share's too: a few points of attainment drawn from 89 % look like a collapse)
PANELS: tuple[tuple[str, tuple[tuple[str, str], ...], str | None, str, str], ...] = (
    ("TTFT (ms): avg, p90 dashed", (("ttft_ms.avg", "solid"), ("ttft_ms.p90", "dash")), "sla.ttft_ms", ",.0f",
     "ms"),
    ("ITL (ms): avg, p90 dashed", (("itl_ms.avg", "solid"), ("itl_ms.p90", "dash")), "sla.itl_ms", ",.1f", "ms"),
    ("SLA attainment (dashed: the 90 % goal)", (("sla.attainment", "solid"),), None, ".1%", "share of requests"),
    ("Goodput (req/s)", (("sla.goodput_rps", "solid"),), None, ",.3f", "req/s"),
    ("GPU-hours", (("cost.gpu_hours", "solid"),), None, ",.3f", "GPU-h"),
    ("Replica transitions, reversals dotted", (("cost.replica_transitions", "solid"), ("cost.reversals", "dot")),
     None, ",.0f", "count"),
)
#: share of requests the SLA is met for: the same goal as the run report's verdict
ATTAINMENT_GOAL = 0.90
COLS = 2


def write_chart(path: Path, rows: list[dict[str, Any]], sweep: Sweep) -> Path:
    """Draw the chart (self-contained HTML, works offline) and swap it in atomically."""
    from plotly.subplots import make_subplots

    x_axis = sweep.axes[0]
    others = sweep.axes[1:]
    n_rows = -(-len(PANELS) // COLS)
    fig = make_subplots(rows=n_rows, cols=COLS, subplot_titles=[p[0] for p in PANELS], shared_xaxes=True,
                        vertical_spacing=0.08, horizontal_spacing=0.08)
    groups = _groups(rows, [a.path for a in others])
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
               "#7f7f7f", "#bcbd22"]
    for i, (_title, series, sla_col, fmt, ytitle) in enumerate(PANELS):
        r, c = i // COLS + 1, i % COLS + 1
        for g, (label, grows) in enumerate(groups.items()):
            colour = palette[g % len(palette)]
            for j, (col, dash) in enumerate(series):
                xs, ys = _mean_by_x(grows, x_axis.path, col)
                # one legend entry per line of the second axis; clicking it hides that line in every panel
                fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=label or col, legendgroup=label,
                                showlegend=bool(label) and i == 0 and j == 0, row=r, col=c,
                                line={"color": colour, "dash": dash, "width": 2.2 if j else 2},
                                marker={"size": 7 if j else 5, "symbol": "diamond-open" if j else "circle"},
                                hovertemplate=f"{col}" + (f" · {label}" if label else "")
                                + f": %{{y:{fmt}}}<extra></extra>")
        if sla_col is not None:
            _sla_line(fig, rows, x_axis.path, sla_col, r, c)
        if series[0][0] == "sla.attainment":
            fig.add_hline(y=ATTAINMENT_GOAL, line={"color": "#555", "dash": "dash", "width": 1}, row=r, col=c,
                          annotation_text=f"goal {ATTAINMENT_GOAL:.0%}", annotation_position="bottom left")
        _y_axis(fig, rows, [col for col, _ in series], ytitle, r, c)
    unit = field_unit(x_axis.path)
    for c in range(1, COLS + 1):
        fig.update_xaxes(title_text=x_axis.path + (f" ({unit})" if unit else ""), row=n_rows, col=c)
    by = f", one line per {', '.join(a.path for a in others)}" if others else ""
    ok = sum(1 for r in rows if r.get("status") == "ok")
    mean = f", mean of {sweep.spec.repeats} repeats" if sweep.spec.repeats > 1 else ""
    fig.update_layout(
        title=f"llmreplay sweep · {Path(sweep.source).name}: metrics vs {x_axis.path}{by} "
              f"({ok}/{len(rows)} points ok{mean})",
        height=330 * n_rows + 120, template="plotly_white", hovermode="x unified", showlegend=len(groups) > 1,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.03, "x": 0}, margin={"t": 120},
    )
    return atomic_write(path, fig.to_html(include_plotlyjs=True, full_html=True), "sweep chart")


def _groups(rows: list[dict[str, Any]], paths: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Rows split by the values of the non-x axes, labelled ``path=value`` (last path component only)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        label = ", ".join(f"{p.rsplit('.', 1)[-1]}={r.get(p)}" for p in paths)
        out[label].append(r)
    return out


def _mean_by_x(rows: list[dict[str, Any]], x_col: str, y_col: str) -> tuple[list[Any], list[float | None]]:
    """Average over repeats at each x; a point with no ok repeat is a gap (None)."""
    by_x: dict[Any, list[float]] = {}
    for r in rows:
        vals = by_x.setdefault(r.get(x_col), [])
        y = r.get(y_col)
        if r.get("status") == "ok" and isinstance(y, (int, float)):
            vals.append(float(y))
    return list(by_x), [fmean(v) if v else None for v in by_x.values()]


def _sla_line(fig: Any, rows: list[dict[str, Any]], x_col: str, sla_col: str, r: int, c: int) -> None:
    """A constant SLA is a horizontal line; an SLA that is itself swept is drawn as a dotted series."""
    values = {float(v) for row in rows if isinstance(v := row.get(sla_col), (int, float))}
    if len(values) == 1:
        v = next(iter(values))
        fig.add_hline(y=v, line={"color": "#555", "dash": "dot", "width": 1}, row=r, col=c,
                      annotation_text=f"SLA {v:g} ms", annotation_position="top left")
    elif values:
        xs, ys = _mean_by_x([row for row in rows if row.get("status") == "ok"], x_col, sla_col)
        fig.add_scatter(x=xs, y=ys, mode="lines", name="SLA", line={"color": "#555", "dash": "dot", "width": 1},
                        showlegend=False, row=r, col=c)


def _y_axis(fig: Any, rows: list[dict[str, Any]], cols: list[str], title: str, r: int, c: int) -> None:
    """From zero, with a little room below it, so a series that stays at 0 (no reversals) is drawn above the axis
    line rather than hidden on it; shares up to 100 %."""
    ys = [float(v) for row in rows for col in cols if isinstance(v := row.get(col), (int, float))]
    if title.startswith("share"):
        fig.update_yaxes(range=[-0.03, 1.03], tickformat=".0%", title_text=title, row=r, col=c)
        return
    top = max(max(ys, default=0.0) * 1.08, 1.0 if title == "count" else 1e-9)
    fig.update_yaxes(range=[-0.04 * top, top], title_text=title, row=r, col=c)


def field_unit(path: str) -> str | None:
    """The unit of a swept config field, from its definition: ``json_schema_extra={"unit": ...}`` when the field
    declares one, else its name (``_s``, ``_ms``, ``_tokens``) or its description ("Seconds ...")."""
    from pydantic import BaseModel

    from llmreplay.config import RunConfig
    from llmreplay.engine.config import EngineArgs
    from llmreplay.planner.config import PlannerConfig

    head, _, name = path.rpartition(".")
    owners: dict[str, type[BaseModel]] = {"": RunConfig, "extra_engine_args": EngineArgs,
                                          "prefill_engine_args": EngineArgs, "decode_engine_args": EngineArgs,
                                          "planner_config": PlannerConfig}
    model = owners.get(head)
    info = model.model_fields.get(name) if model is not None else None
    extra = info.json_schema_extra if info is not None else None
    if isinstance(extra, dict) and isinstance(extra.get("unit"), str):
        return str(extra["unit"])
    for suffix, unit in (("_ms", "ms"), ("_s", "s"), ("_seconds", "s"), ("_tokens", "tokens"), ("_time", "s"),
                         ("_interval", "s"), ("_ratio", "×")):
        if name.endswith(suffix):
            return unit
    desc = (info.description or "").lower() if info is not None else ""
    if desc.startswith("seconds") or " in seconds" in desc or "(s)" in desc:
        return "s"
    if desc.startswith("milliseconds") or "(ms)" in desc:
        return "ms"
    return None
