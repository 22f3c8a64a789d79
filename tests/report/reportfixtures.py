"""Synthetic run reports (the JSON ``build_report`` writes) for the HTML report tests, plus a real one.

``make_report`` builds a small, self-consistent report: agg without a planner, agg with a flapping planner
(many scaling events), or disagg with a planner (prefill/decode pools, ``partner_not_ready`` decisions).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

KV_CAPACITY = 100_000  # tokens per engine
BLOCK = 16
TICK_S = 5.0
THROUGHPUT_EVERY = 12  # ticks (60 s)


def _worker(rng: np.random.Generator, wid: int, n: int, alive: tuple[int, int], cap: int) -> dict[str, Any]:
    a, b = alive
    kv: list[float | None] = [None] * n
    queued: list[float | None] = [None] * n
    total: list[float | None] = [None] * n
    busy: list[float | None] = [0.0] * n
    waiting: list[float | None] = [None] * n
    for i in range(a, b + 1):
        k = round(float(rng.uniform(0.05, 0.6)), 6)
        q = float(rng.integers(0, 30_000))
        kv[i] = k
        queued[i] = q
        total[i] = k * cap + q  # "total KV" = in flight + queued (same-step maxima in the real series)
        busy[i] = round(float(rng.uniform(0.2, 1.0)), 6)
        waiting[i] = float(rng.integers(0, 5))
    if wid == 0 and b - a > 10:  # a queue spike that must survive downsampling
        queued[a + 5] = 3.0 * cap
        total[a + 5] = (kv[a + 5] or 0.0) * cap + 3.0 * cap
    return {"id": wid, "kv_used_fraction_max": kv, "queued_prefill_tokens_max": queued, "waiting_max": waiting,
            "total_kv_tokens_max": total, "busy_fraction": busy}


def _pool_ts(rng: np.random.Generator, n: int, lives: list[tuple[int, int]], gpus_per_worker: int,
             first_id: int = 0) -> dict[str, Any]:
    workers = [_worker(rng, first_id + i, n, life, KV_CAPACITY) for i, life in enumerate(lives)]
    active = [sum(1 for a, b in lives if a <= i <= b) for i in range(n)]
    return {"kv_capacity_tokens": KV_CAPACITY, "active_workers": active, "provisioned_workers": active,
            "gpus": [v * gpus_per_worker for v in active], "workers": workers}


def _tick(t: float) -> dict[str, Any]:
    keys = ("replicas_prefill", "replicas_decode", "floor_prefill", "floor_decode", "predicted_rps", "predicted_isl",
            "predicted_osl", "observed_rps", "observed_isl", "observed_osl", "observed_ttft_ms", "observed_itl_ms",
            "est_ttft_ms", "est_itl_ms", "engine_rps_prefill", "engine_rps_decode", "max_batch", "reason_load",
            "reason_load_prefill", "reason_load_decode", "reason_throughput", "reason_throughput_prefill",
            "reason_throughput_decode")
    d: dict[str, Any] = dict.fromkeys(keys)
    d["t_s"] = t
    return d


def make_report(kind: str = "agg", n_bins: int = 60, bin_s: float = 10.0, workers: int = 2,
                seed: int = 0, sla: bool = True) -> dict[str, Any]:
    """``kind``: ``agg`` (no planner), ``agg_planner`` (flapping planner) or ``disagg`` (planner)."""
    rng = np.random.default_rng(seed)
    n = n_bins
    horizon = n * bin_s
    t = [round(i * bin_s, 3) for i in range(n)]
    arrivals = rng.integers(5, 40, n)
    ttft = rng.uniform(100, 3000, n)
    itl = rng.uniform(5, 70, n)
    att = np.clip(rng.uniform(0.6, 1.05, n), 0, 1)
    att[3] = np.nan  # an interval with no arrival
    pct = np.linspace(0, 100, 101)
    ts: dict[str, Any] = {
        "bin_s": bin_s, "t_s": t, "arrivals": arrivals.tolist(), "completions": arrivals.tolist(),
        "arrival_rps": (arrivals / bin_s).round(6).tolist(), "ttft_ms_avg": ttft.round(3).tolist(),
        "itl_ms_avg": itl.round(3).tolist(), "isl_avg": rng.uniform(2000, 12000, n).round(1).tolist(),
        "osl_avg": rng.uniform(100, 500, n).round(1).tolist(),
        "prefix_cache_hit_rate": rng.uniform(0, 0.5, n).round(4).tolist(),
        "sla_attainment": [None if not math.isfinite(x) else round(float(x), 6) for x in att] if sla else None,
        "cdf": {"percent": pct.tolist(), "ttft_ms": np.geomspace(10, 20000, 101).round(3).tolist(),
                "itl_ms": np.geomspace(4, 400, 101).round(3).tolist(),
                "request_latency_ms": np.geomspace(50, 60000, 101).round(3).tolist()},
    }
    disagg = kind == "disagg"
    planner: dict[str, Any] | None = None
    planner_cfg: dict[str, Any] | None = None
    events: list[dict[str, Any]] = []
    if kind == "agg":
        pools_ts = {"agg": _pool_ts(rng, n, [(0, n - 1)] * workers, 1)}
    elif kind == "agg_planner":
        # flapping: 2 → 3 → 2 → 3 ... every other load tick; workers come and go (short lives)
        lives = [(0, n - 1), (0, n - 1)] + [(i, min(i + 1, n - 1)) for i in range(2, n - 2, 3)]
        pools_ts = {"agg": _pool_ts(rng, n, lives, 1)}
    else:
        pools_ts = {"prefill": _pool_ts(rng, n, [(0, n - 1), (n // 3, 2 * n // 3)], 1),
                    "decode": _pool_ts(rng, n, [(0, n - 1)] * 2, 2, first_id=100)}
    if kind != "agg":
        ticks: list[dict[str, Any]] = []
        n_ticks = int(horizon / TICK_S)
        prev: dict[str, int] = {}
        for k in range(1, n_ticks + 1):
            tk = _tick(k * TICK_S)
            tk["observed_rps"] = round(float(rng.uniform(1, 4)), 4)
            tk["observed_ttft_ms"] = round(float(rng.uniform(100, 3000)), 4)
            tk["observed_itl_ms"] = round(float(rng.uniform(5, 60)), 4)
            tk["est_ttft_ms"] = round(float(rng.uniform(100, 3000)), 4)
            tk["est_itl_ms"] = round(float(rng.uniform(5, 60)), 4)
            through = k % THROUGHPUT_EVERY == 0
            if disagg:
                tk["replicas_prefill"] = 1 + (k // 20) % 2
                tk["replicas_decode"] = 2 if k < n_ticks // 2 else 3
                tk["floor_prefill"] = 1
                tk["floor_decode"] = 2 if k < n_ticks // 2 else 3
                tk["reason_load_prefill"] = "scale_up" if k % 20 == 0 else "no_change"
                tk["reason_load_decode"] = "scaling_in_progress" if k % 7 == 0 else "no_change"
                tk["reason_load"] = tk["reason_load_prefill"]
                if through:
                    tk["reason_throughput_prefill"] = "set_lower_bound"
                    tk["reason_throughput_decode"] = "partner_not_ready" if k < n_ticks // 2 else "scale"
                    tk["reason_throughput"] = "set_lower_bound"
            else:
                tk["replicas_decode"] = 2 + k % 2
                tk["floor_decode"] = 2 if through or k > THROUGHPUT_EVERY else None
                tk["reason_load"] = "scale_up" if k % 2 else "scale_down"
                tk["reason_load_decode"] = tk["reason_load"]
                if through:
                    tk["reason_throughput"] = "set_lower_bound"
            if through:
                tk["predicted_rps"] = round(float(rng.uniform(1, 4)), 4)
                tk["predicted_isl"] = round(float(rng.uniform(2000, 12000)), 2)
                tk["predicted_osl"] = round(float(rng.uniform(100, 500)), 2)
                tk["engine_rps_decode"] = round(float(rng.uniform(1, 3)), 4)
                tk["engine_rps_prefill"] = round(float(rng.uniform(2, 6)), 4) if disagg else None
                tk["max_batch"] = 32
            for comp in ("prefill", "decode"):
                v = tk[f"replicas_{comp}"]
                if v is None:
                    continue
                if comp in prev and prev[comp] != v:
                    events.append({"t_s": tk["t_s"], "component": comp if disagg else "agg", "from": prev[comp],
                                   "to": v, "reason": "scale_up" if v > prev[comp] else "scale_down"})
                prev[comp] = v
            ticks.append(tk)
        decisions: dict[str, dict[str, int]] = {"load": {}, "throughput": {}}
        for tk in ticks:
            for kind_, key in (("load", "reason_load"), ("throughput", "reason_throughput")):
                if tk[key]:
                    decisions[kind_][tk[key]] = decisions[kind_].get(tk[key], 0) + 1
        planner_cfg = {"mode": None, "optimization_target": "sla", "ttft": 2500.0, "itl": 50.0,
                       "enable_throughput_scaling": True, "enable_load_scaling": True,
                       "throughput_adjustment_interval": THROUGHPUT_EVERY * TICK_S,
                       "load_adjustment_interval": TICK_S, "load_predictor": "constant", "max_gpu_budget": 16}
        # an event that is not a change (from == to) must not count as a transition
        events.append({"t_s": horizon - 1, "component": "decode" if disagg else "agg", "from": 3, "to": 3,
                       "reason": "no_change"})
        planner = {"ticks": ticks, "decisions": decisions, "events": events, "config": planner_cfg}
    ts["pools"] = pools_ts
    pools = {name: {"workers_start": 2, "workers_peak": max(p["active_workers"]), "gpus_per_worker": 1,
                    "gpu_hours": float(sum(p["gpus"]) * bin_s / 3600), "utilization": 0.7, "kv_peak_fraction": 0.6,
                    "num_gpu_blocks": KV_CAPACITY // BLOCK, "block_size": BLOCK, "kv_capacity_tokens": KV_CAPACITY,
                    "steps": 1000, "preemptions": 0, "evicted_blocks": 0} for name, p in pools_ts.items()}
    total = int(arrivals.sum())
    good = int(0.88 * total)
    real_changes = sum(1 for e in events if e["from"] != e["to"])
    stats = {"avg": 800.0, "min": 10.0, "max": 20000.0, "p50": 600.0, "p90": 1800.0, "p95": 2400.0, "p99": 9000.0,
             "std": 900.0}
    return {
        "schema": "llmreplay.run/1",
        "config": {"trace": f"/data/{kind}_trace.jsonl", "trace_requests": total, "num_workers": workers,
                   "num_prefill_workers": 2 if disagg else None, "num_decode_workers": 2 if disagg else None,
                   "router": "kv", "planner_config": planner_cfg, "sla_ttft_ms": 2500.0 if sla else None,
                   "sla_itl_ms": 50.0 if sla else None, "hardware": {"describe": "H200 SXM ×1 (TP1) · test model"},
                   "perf_model": "roofline (test)"},
        "requests": {"total": total, "completed": total, "rejected": 0, "unfinished": 0, "rejected_by_reason": {}},
        "metrics": {"ttft_ms": stats, "itl_ms": {k: v / 50 for k, v in stats.items()},
                    "request_latency_ms": {k: v * 5 for k, v in stats.items()}, "isl": stats, "osl": stats,
                    "inter_chunk_latency_ms": stats, "request_throughput_rps": 2.0,
                    "output_token_throughput_tps": 600.0, "prefix_cache_hit_rate": 0.21, "duration_s": horizon},
        "sla": ({"ttft_ms": 2500.0, "itl_ms": 50.0, "e2e_ms": None, "attainment": good / total,
                 "goodput_rps": good / horizon, "good_requests": good, "population": total,
                 "within_ttft": 0.913, "within_itl": 0.962, "within_ttft_and_itl": good / total} if sla else
                {"ttft_ms": None, "itl_ms": None, "e2e_ms": None, "attainment": None, "goodput_rps": None}),
        "cost": {"gpu_hours": float(sum(p["gpu_hours"] for p in pools.values())),
                 "peak_gpus": max(sum(p["gpus"][i] for p in pools_ts.values()) for i in range(n)),
                 "replica_transitions": real_changes, "reversals": max(real_changes - 1, 0)},
        "pools": pools,
        "timeseries": ts,
        "planner": planner,
        "sim": {"wall_s": 0.1, "simulated_s": horizon, "requests_per_wall_s": 1.0, "peak_rss_mb": 1.0,
                "version": "test"},
    }


_CONV: dict[str, Any] = {}


def real_conv_report(tmp_dir: Path) -> dict[str, Any]:
    """The real report of the full Mooncake conversation trace on 4 workers (TTFT 2500 ms, ITL 50 ms), computed
    once per session; skips the test when the shared trace is not there."""
    trace = Path(__file__).resolve().parents[2].parent / "shared" / "traces" / \
        "mooncake_fast25_conversation_trace.jsonl"
    if not trace.exists():
        pytest.skip(f"shared trace not found at {trace}")
    if "report" not in _CONV:
        from llmreplay.cli.run_cmd import resolve_config
        from llmreplay.runner import run, write_outputs

        cfg = resolve_config({"trace": str(trace), "num_workers": 4, "sla_ttft_ms": 2500.0, "sla_itl_ms": 50.0,
                              "report_json": str(tmp_dir / "conv.json")}, None, False)
        write_outputs(cfg, run(cfg))
        # the report as a reader of the saved file sees it (JSON round trip)
        _CONV["report"] = json.loads(Path(str(cfg.report_json)).read_text())
    return copy.deepcopy(_CONV["report"])
