"""The answer of a search: the ranked table, the Pareto chart, and the files ``--out DIR`` holds.

- ``recommendation.yaml``: the winner as a run config (trace as an absolute path): ``llmreplay run --config``;
- ``dynamo_args.json``: the Dynamo 1.6.1 commands the winner corresponds to (frontend router mode, vLLM worker
  args per role and replicas, the planner's ``--config`` for a planner fleet);
- ``candidates.parquet``: every replay of the search (screen and confirm), one row each;
- ``pareto.html``: cost per hour × SLA attainment of every candidate, the Pareto front highlighted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from llmreplay.cost.prices import price_of
from llmreplay.engine.config import parse_engine_args
from llmreplay.fileio import atomic_write
from llmreplay.planner.config import ALIASES as PLANNER_ALIASES
from llmreplay.recommend.search import Evaluation, SearchOutcome
from llmreplay.recommend.space import Deployment

#: (column, header, format) of the console table, after rank and deployment
TABLE: tuple[tuple[str, str, str], ...] = (
    ("gpus", "GPUs", "d"),
    ("cost_per_hour", "$/h", ",.2f"),
    ("gpu_hours", "GPU-h", ",.2f"),
    ("energy_kwh", "kWh", ",.2f"),
    ("attainment", "attain.", ".1%"),
    ("goodput_rps", "goodput", ",.2f"),
    ("ttft_p50_ms", "TTFT p50", ",.0f"),
    ("ttft_p90_ms", "p90", ",.0f"),
    ("itl_p50_ms", "ITL p50", ",.1f"),
    ("itl_p90_ms", "p90", ",.1f"),
)


def row(ev: Evaluation, outcome: SearchOutcome) -> dict[str, Any]:
    """One flat row per replay (all a user needs to compare candidates)."""
    d = ev.deployment
    r: dict[str, Any] = {
        "deployment": d.label(), "short": d.short_label(), "stage": ev.stage, "gpu": d.gpu, "weights": d.weights,
        "model": d.model,
        "tp": d.tp, "topology": d.topology, "router": d.router, "workers": d.workers if d.topology == "agg" else None,
        "prefill_workers": d.prefill if d.topology == "disagg" else None,
        "decode_workers": d.decode if d.topology == "disagg" else None, "planner": d.planner, "gpus": d.gpus,
        "cost_per_hour": ev.cost_per_hour, "meets_goal": ev.meets, "attainment": ev.attainment,
        "error": ev.error, "cached": ev.cached, "wall_s": ev.wall_s,
    }
    rep = ev.report or {}
    metrics, cost = rep.get("metrics", {}), rep.get("cost", {})
    out_tokens = (metrics.get("output_token_throughput_tps") or 0.0) * (metrics.get("duration_s") or 0.0)
    price = price_of(outcome.prices, d.gpu).usd_per_hour
    gpu_hours = cost.get("gpu_hours")
    r.update({
        "goodput_rps": rep.get("sla", {}).get("goodput_rps"),
        "ttft_p50_ms": (metrics.get("ttft_ms") or {}).get("p50"),
        "ttft_p90_ms": (metrics.get("ttft_ms") or {}).get("p90"),
        "itl_p50_ms": (metrics.get("itl_ms") or {}).get("p50"),
        "itl_p90_ms": (metrics.get("itl_ms") or {}).get("p90"),
        "gpu_hours": gpu_hours,
        "energy_kwh": cost.get("energy_kwh"),
        "joules_per_output_token": cost.get("joules_per_output_token"),
        "cost_per_m_output_tokens": gpu_hours * price / out_tokens * 1e6 if gpu_hours and out_tokens else None,
        "output_tokens": round(out_tokens) if rep else None,
        "simulated_s": rep.get("sim", {}).get("simulated_s"),
    })
    return r


def ranked(outcome: SearchOutcome) -> list[dict[str, Any]]:
    """Whole-trace replays, best first: those meeting the goal by (cost per hour, GPUs, −attainment), then the
    rest by attainment."""
    evs = sorted(outcome.confirmed, key=lambda e: (0, *e.key) if e.meets else (1, -(e.attainment or 0.0), 0, 0.0))
    rows = []
    for i, ev in enumerate(evs, 1):
        rows.append({"rank": i, "winner": ev is outcome.winner, **row(ev, outcome)})
    return rows


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points no other point beats: cheaper-or-equal with higher-or-equal attainment, one strictly."""
    front = []
    for i, (c, a) in enumerate(points):
        if not any((c2 <= c and a2 >= a) and (c2 < c or a2 > a) for c2, a2 in points):
            front.append(i)
    return front


def write_pareto(path: Path, outcome: SearchOutcome) -> Path:
    """Every candidate as a point (screened ones faded), the Pareto front of whole-trace replays joined and
    highlighted, the goal as a line, the winner starred. Self-contained HTML (plotly.js inline)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    rows = [row(e, outcome) for e in outcome.evaluations if e.attainment is not None]
    for stage, name, opacity in (("screen", "screened on the window", 0.3), ("full", "whole trace", 0.9)):
        for topo, symbol in (("agg", "circle"), ("disagg", "diamond")):
            sel = [r for r in rows if r["stage"] == stage and r["topology"] == topo]
            if sel:
                fig.add_scatter(x=[r["cost_per_hour"] for r in sel], y=[r["attainment"] for r in sel],
                                mode="markers", name=f"{topo}, {name}", opacity=opacity,
                                marker={"symbol": symbol, "size": 9},
                                text=[r["deployment"] for r in sel],
                                hovertemplate="%{text}<br>$%{x:,.2f}/h · attainment %{y:.1%}<extra></extra>")
    full = [r for r in rows if r["stage"] == "full"]
    idx = sorted(pareto_front([(r["cost_per_hour"], r["attainment"]) for r in full]),
                 key=lambda i: full[i]["cost_per_hour"])
    if idx:
        fig.add_scatter(x=[full[i]["cost_per_hour"] for i in idx], y=[full[i]["attainment"] for i in idx],
                        mode="lines+markers", name="Pareto front", line={"color": "#d62728", "width": 2},
                        marker={"size": 12, "color": "rgba(0,0,0,0)", "line": {"color": "#d62728", "width": 2}},
                        text=[full[i]["deployment"] for i in idx],
                        hovertemplate="front: %{text}<br>$%{x:,.2f}/h · %{y:.1%}<extra></extra>")
    if outcome.winner is not None:
        w = row(outcome.winner, outcome)
        fig.add_scatter(x=[w["cost_per_hour"]], y=[w["attainment"]], mode="markers", name="winner",
                        marker={"symbol": "star", "size": 18, "color": "#2ca02c"}, text=[w["deployment"]],
                        hovertemplate="winner: %{text}<extra></extra>")
    fig.add_hline(y=outcome.goal, line={"dash": "dash", "color": "#7f7f7f"},
                  annotation_text=f"goal {outcome.goal:.0%}")
    fig.update_layout(title="llmreplay recommend: cost per hour × SLA attainment (every candidate; Pareto front "
                      "of whole-trace replays in red)", xaxis_title="USD per hour", yaxis_title="SLA attainment",
                      yaxis={"tickformat": ".0%"}, template="plotly_white", height=650)
    atomic_write(path, fig.to_html(include_plotlyjs="inline", full_html=True), "pareto chart")
    return path


def write_candidates(path: Path, outcome: SearchOutcome) -> Path:
    """Every replay as one row: Parquet (pyarrow), or CSV next to it when pyarrow is missing."""
    rows = [row(e, outcome) for e in outcome.evaluations]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        import csv
        import io

        path = path.with_suffix(".csv")
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["deployment"])
        w.writeheader()
        w.writerows(rows)
        atomic_write(path, buf.getvalue(), "candidates")
        return path
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.Table.from_pylist(rows), tmp)
    tmp.replace(path)
    return path


def recommendation_config(outcome: SearchOutcome) -> dict[str, Any]:
    assert outcome.winner is not None
    return outcome.run_values(outcome.winner.deployment)


#: vLLM's KV connector per disagg role, as Dynamo 1.6.1's profiler writes them
#: (``dynamo/profiler/utils/config_modifiers/vllm.py``: DEFAULT_VLLM_KV_TRANSFER_CONFIG). Since 1.6 a prefill worker
#: must be given ``--kv-transfer-config`` (``dynamo/vllm/args.py``); ``--is-prefill-worker`` is gone.
KV_TRANSFER_CONFIG = {
    "prefill": '{"kv_connector":"NixlConnector","kv_role":"kv_producer"}',
    "decode": '{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}',
}

#: our planner_config names → Dynamo 1.6.1's PlannerConfig names: the inverse of the aliases we accept
DYNAMO_PLANNER_NAMES = {ours: dynamos for dynamos, ours in PLANNER_ALIASES.items()}

#: planner_config keys that only llmreplay reads (Dynamo's PlannerConfig forbids unknown keys)
LLMREPLAY_ONLY_PLANNER_KEYS = ("policy", "schedule")


def dynamo_planner_config(planner_config: dict[str, Any]) -> dict[str, Any]:
    """The planner config in Dynamo's spelling, for ``python -m dynamo.planner --config JSON``."""
    return {DYNAMO_PLANNER_NAMES.get(k, k): v for k, v in planner_config.items()
            if k not in LLMREPLAY_ONLY_PLANNER_KEYS}


def dynamo_args(outcome: SearchOutcome) -> dict[str, Any]:
    """The Dynamo 1.6.1 deployment the winner stands for: ``python -m dynamo.frontend --router-mode ...``,
    ``python -m dynamo.vllm`` workers with vLLM's engine flags (``--disaggregation-mode`` per role in disagg),
    replicas per role, and ``python -m dynamo.planner --config JSON`` for a planner fleet."""
    assert outcome.winner is not None
    d: Deployment = outcome.winner.deployment
    values = outcome.run_values(d)
    raw = values.get("extra_engine_args") or values.get("decode_engine_args") or {}
    args = parse_engine_args(raw)
    engine = ["--model", d.model, "--tensor-parallel-size", str(d.tp), "--block-size", str(args.block_size),
              "--max-num-seqs", str(args.max_num_seqs), "--max-num-batched-tokens", str(args.max_num_batched_tokens),
              "--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    if args.kv_cache_dtype != "auto":
        engine += ["--kv-cache-dtype", args.kv_cache_dtype]
    if not args.enable_prefix_caching:
        engine.append("--no-enable-prefix-caching")
    worker = ["python", "-m", "dynamo.vllm", *engine]
    if d.topology == "agg":
        workers = [{"role": "agg", "replicas": d.workers, "gpus_per_replica": d.tp, "command": worker}]
    else:
        workers = [{"role": role, "replicas": replicas, "gpus_per_replica": d.tp,
                    "command": [*worker, "--disaggregation-mode", role,
                                "--kv-transfer-config", KV_TRANSFER_CONFIG[role]]}
                   for role, replicas in (("prefill", d.prefill), ("decode", d.decode))]
    router = {"round_robin": "round-robin", "kv": "kv", "random": "random"}.get(d.router, d.router)
    out: dict[str, Any] = {
        "generated_by": "llmreplay recommend",
        "dynamo_version": "1.6.1",
        "gpu": d.gpu, "model": d.model, "mode": d.topology,
        "frontend": ["python", "-m", "dynamo.frontend", "--router-mode", router],
        "workers": workers,
        "planner": None,
    }
    if d.planner_config is not None:
        config = dynamo_planner_config(d.planner_config)
        policy = d.planner_config.get("policy", "dynamo")
        out["planner"] = {"policy": policy, "config": config,
                          "command": ["python", "-m", "dynamo.planner", "--config",
                                      json.dumps(config, sort_keys=True)]}
        if policy != "dynamo":
            out["planner"]["note"] = (f"the replay used llmreplay's policy '{policy}'; Dynamo's planner with this "
                                      "config decides as policy 'dynamo' does, so replay that to see what it does")
    return out


def write_outputs(out_dir: Path, outcome: SearchOutcome) -> list[str]:
    """Write every output file; one line per file for the console."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    if outcome.winner is not None:
        cfg = recommendation_config(outcome)
        head = (f"# llmreplay recommend: {outcome.winner.deployment.label()}\n"
                f"# replay it: llmreplay run --config {out_dir / 'recommendation.yaml'}\n")
        p = atomic_write(out_dir / "recommendation.yaml", head + yaml.safe_dump(cfg, sort_keys=False), "recommendation")
        lines.append(f"recommendation: {p}")
        p = atomic_write(out_dir / "dynamo_args.json", json.dumps(dynamo_args(outcome), indent=2) + "\n",
                         "dynamo args")
        lines.append(f"Dynamo args: {p}")
    lines.append(f"candidates: {write_candidates(out_dir / 'candidates.parquet', outcome)}")
    lines.append(f"Pareto chart: {write_pareto(out_dir / 'pareto.html', outcome)}")
    return lines


def as_json(outcome: SearchOutcome) -> dict[str, Any]:
    """``--json``: the ranked table plus the winner and how the search went."""
    s = outcome.stats
    return {
        "schema": "llmreplay.recommend/1",
        "goal": outcome.goal,
        "winner": None if outcome.winner is None else row(outcome.winner, outcome),
        "ranked": ranked(outcome),
        "search": {"space": s.space, "lines": s.lines, "replays": s.replays, "cached": s.cached,
                   "inferred": s.inferred, "pruned_by_cost": s.pruned_by_cost, "rounds": s.rounds,
                   "screen_window_s": list(s.screen_window) if s.screen_window else None},
        "notes": outcome.notes,
        "prices": {g: {"usd_per_hour": p.usd_per_hour, "source": p.source, "date": p.date}
                   for g, p in sorted(outcome.prices.items())},
    }
