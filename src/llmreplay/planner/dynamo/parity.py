"""Open-loop parity: feed the ticks Dynamo recorded to the Dynamo policy and compare its decisions.

Dynamo's planner replay report holds, per tick, the scheduled tick, its inputs (per-worker FPMs, traffic,
worker counts) and its effects (``scale_to``, diagnostics). The inputs alone drive the policy: ``effects``,
``runtime_decision``, ``scaling_events`` and ``lifecycle_operations`` are stripped before a tick is fed.
A tick's decision is ``scale_to`` per component (null: no change); a relative error is
``|ours − Dynamo| / max(|Dynamo|, 1e-9)``, and a value null on one side only is a mismatch, counted apart.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmreplay.engine.config import EngineArgs, parse_engine_args
from llmreplay.engine.perf.hw import resolve_hardware
from llmreplay.engine.perf.registry import build_engine_perf_model
from llmreplay.errors import InputError
from llmreplay.planner.config import PlannerConfig
from llmreplay.planner.dynamo.bootstrap import benchmark_fpms
from llmreplay.planner.dynamo.fpm import Fpm, FpmMap
from llmreplay.planner.dynamo.policy import DynamoPolicy, ScheduledTick, TickInput, Traffic
from llmreplay.planner.dynamo.settings import Capabilities, settings_from_config
from llmreplay.planner.dynamo.state import Decision, WorkerCounts

#: what the command removes from each recorded tick before feeding it
STRIPPED = ("effects", "runtime_decision")
DIAGNOSTICS = ("estimated_ttft_ms", "estimated_itl_ms", "predicted_num_req", "predicted_isl", "predicted_osl",
               "predicted_kv_hit_rate", "engine_rps_prefill", "engine_rps_decode",
               "throughput_lower_bound_prefill", "throughput_lower_bound_decode")
REASONS = ("load_decision_reason", "throughput_decision_reason", "load_decision_reason_prefill",
           "load_decision_reason_decode", "throughput_decision_reason_prefill", "throughput_decision_reason_decode")


def load_report(path: Path) -> dict[str, Any]:
    """A Dynamo replay report (``.json`` or ``.json.gz``) with planner ticks, or an InputError."""
    try:
        raw = path.read_bytes()
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        report: dict[str, Any] = json.loads(text)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable Dynamo replay report (JSON or gzipped JSON): {exc}") from None
    ticks = (report.get("planner") or {}).get("ticks") if isinstance(report, dict) else None
    if not isinstance(ticks, list) or not ticks:
        raise InputError(f"{path}: no planner ticks found (expected planner.ticks, as Dynamo's planner replay "
                         "writes with capture_details on).")
    return report


def strip_tick(tick: dict[str, Any]) -> dict[str, Any]:
    """The recorded inputs of one tick, without anything Dynamo decided."""
    return {k: v for k, v in tick.items() if k not in STRIPPED}


def _fpm_map(entries: list[dict[str, Any]] | None) -> FpmMap | None:
    if not entries:
        return None
    out: FpmMap = {}
    for e in entries:
        fpm = Fpm.from_dict(e["metrics"])
        out[(str(e["worker_id"]), int(e["dp_rank"]))] = fpm
    return out


def tick_input(tick: dict[str, Any]) -> tuple[ScheduledTick, TickInput]:
    s, inp = tick["scheduled_tick"], tick["input"]
    sched = ScheduledTick(at_s=float(s["at_s"]), run_load_scaling=bool(s["run_load_scaling"]),
                          run_throughput_scaling=bool(s["run_throughput_scaling"]),
                          need_traffic_metrics=bool(s.get("need_traffic_metrics")),
                          traffic_metrics_duration_s=float(s.get("traffic_metrics_duration_s") or 0.0),
                          need_worker_fpm=bool(s.get("need_worker_fpm")))
    t = inp.get("traffic")
    traffic = None if t is None else Traffic(float(t["duration_s"]), float(t["num_req"]), float(t["isl"]),
                                             float(t["osl"]), t.get("kv_hit_rate"))
    wc = inp.get("worker_counts")
    counts = None if wc is None else WorkerCounts(**wc)
    fo = inp.get("fpm_observations")
    return sched, TickInput(now_s=float(inp["now_s"]), traffic=traffic, worker_counts=counts,
                            fpm_prefill=_fpm_map(fo.get("prefill")) if fo else None,
                            fpm_decode=_fpm_map(fo.get("decode")) if fo else None, have_fpm=fo is not None)


def engine_capabilities(args: EngineArgs) -> tuple[Capabilities, Any]:
    """What Dynamo's planner knows of an engine (``_engine_caps``), and its perf model for the bootstrap."""
    hw = resolve_hardware(args)
    perf = build_engine_perf_model(args, hw)
    blocks = args.num_gpu_blocks if args.num_gpu_blocks is not None else \
        hw.derive_num_gpu_blocks(args.block_size, args.gpu_memory_utilization, args.max_num_batched_tokens)
    caps = Capabilities(num_gpu=hw.tp, max_num_batched_tokens=args.max_num_batched_tokens,
                        max_num_seqs=args.max_num_seqs, max_kv_tokens=blocks * args.block_size,
                        context_length=args.max_model_len)
    return caps, perf


def dynamo_engine_args(raw: dict[str, Any], source: str) -> EngineArgs:
    """Engine args as Dynamo's mocker reads them: an AIC identity (``aic_*``) means AIC timing."""
    values = dict(raw)
    if values.get("aic_backend") is not None and "perf_model" not in values:
        values["perf_model"] = "aic"
    return parse_engine_args(values, source=source)


@dataclass
class BuiltPolicy:
    policy: DynamoPolicy
    bootstrap: dict[str, Any]


def _fpm_builtins(f: Fpm) -> dict[str, Any]:
    """A benchmark FPM as ``msgspec.to_builtins`` writes Dynamo's ``ForwardPassMetrics`` (defaults included)."""
    return {"version": 1, "worker_id": "", "dp_rank": 0, "counter_id": 0, "wall_time": f.wall_time,
            "scheduled_requests": dict(f.scheduled.__dict__), "queued_requests": dict(f.queued.__dict__)}


def fpm_digest(prefill: list[Fpm], decode: list[Fpm]) -> str:
    """Dynamo's ``_ais_fpm_digest`` (``dynamo/replay/planner.py``) of the bootstrap FPMs: equal digests mean
    the same points with bit-identical times."""
    payload = {"prefill": [_fpm_builtins(f) for f in prefill], "decode": [_fpm_builtins(f) for f in decode]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def build_policy(cfg: PlannerConfig, mode: str, prefill_args: EngineArgs | None, decode_args: EngineArgs,
                 granularity: int = 8) -> BuiltPolicy:
    """The Dynamo policy bootstrapped as Dynamo's replay does (``prepare_planner_replay``)."""
    settings = settings_from_config(cfg, mode)
    d_caps, d_perf = engine_capabilities(decode_args)
    d_caps = Capabilities(**{**d_caps.__dict__, "num_gpu": cfg.decode_engine_num_gpu or d_caps.num_gpu})
    p_caps = None
    p_perf, p_limits_args = d_perf, decode_args
    if mode == "disagg":
        assert prefill_args is not None
        p_caps, p_perf = engine_capabilities(prefill_args)
        p_caps = Capabilities(**{**p_caps.__dict__, "num_gpu": cfg.prefill_engine_num_gpu or p_caps.num_gpu})
        p_limits_args = prefill_args
    policy = DynamoPolicy(settings, p_caps, d_caps)
    counts: dict[str, Any] = {"prefill": 0, "decode": 0, "fpm_sha256": None}
    if not settings.easy and cfg.pre_deployment_sweeping_mode == "rapid":
        p_src = p_caps if p_caps is not None else d_caps
        prefill, _ = benchmark_fpms(p_perf, p_src.max_num_batched_tokens, p_src.max_num_seqs, p_src.max_kv_tokens,
                                    granularity, p_limits_args.speedup_ratio)
        _, decode = benchmark_fpms(d_perf, d_caps.max_num_batched_tokens, d_caps.max_num_seqs, d_caps.max_kv_tokens,
                                   granularity, decode_args.speedup_ratio)
        policy.bootstrap(prefill, decode)
        counts = {"prefill": len(prefill), "decode": len(decode), "fpm_sha256": fpm_digest(prefill, decode)}
    return BuiltPolicy(policy, counts)


def _decision(d: Decision | dict[str, Any] | None) -> dict[str, int | None] | None:
    if d is None:
        return None
    if isinstance(d, Decision):
        return {"num_prefill": d.num_prefill, "num_decode": d.num_decode}
    return {"num_prefill": d.get("num_prefill"), "num_decode": d.get("num_decode")}


@dataclass
class ParityResult:
    ticks: int = 0
    same_decision: int = 0
    change_ticks: int = 0
    same_change: int = 0
    same_reasons: int = 0
    max_rel_error: dict[str, float] = field(default_factory=dict)
    null_mismatches: dict[str, int] = field(default_factory=dict)
    first_disagreements: list[dict[str, Any]] = field(default_factory=list)
    bootstrap: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def ratio(a: int, b: int) -> float | None:
            return a / b if b else None

        return {
            "ticks": self.ticks,
            "decision_agreement": ratio(self.same_decision, self.ticks),
            "change_ticks": self.change_ticks,
            "change_agreement": ratio(self.same_change, self.change_ticks),
            "reason_agreement": ratio(self.same_reasons, self.ticks),
            "diagnostics_max_rel_error": dict(self.max_rel_error),
            "diagnostics_null_mismatches": dict(self.null_mismatches),
            "bootstrap": self.bootstrap,
            "first_disagreements": self.first_disagreements,
        }


def run_parity(report: dict[str, Any], built: BuiltPolicy) -> ParityResult:
    policy = built.policy
    meta = (report["planner"].get("metadata") or {}).get("bootstrap") or {}
    ours_sha, theirs_sha = built.bootstrap.get("fpm_sha256"), meta.get("fpm_sha256")
    res = ParityResult(bootstrap={
        "ours": {"prefill_fpm_count": built.bootstrap["prefill"], "decode_fpm_count": built.bootstrap["decode"],
                 "fpm_sha256": ours_sha},
        "dynamo": {"prefill_fpm_count": meta.get("prefill_fpm_count"), "decode_fpm_count": meta.get("decode_fpm_count"),
                   "benchmark_granularity": meta.get("benchmark_granularity"), "fpm_sha256": theirs_sha},
        "identical": ours_sha is not None and ours_sha == theirs_sha,
    })
    for name in DIAGNOSTICS:
        res.max_rel_error[name] = 0.0
        res.null_mismatches[name] = 0
    for recorded in report["planner"]["ticks"]:
        sched, inp = tick_input(strip_tick(recorded))
        effects = policy.tick(sched, inp)
        theirs_effects = recorded.get("effects") or {}
        ours, theirs = _decision(effects.scale_to), _decision(theirs_effects.get("scale_to"))
        res.ticks += 1
        same = ours == theirs
        res.same_decision += same
        if theirs is not None:
            res.change_ticks += 1
            res.same_change += same
        ours_diag = effects.diagnostics.as_dict()
        theirs_diag = theirs_effects.get("diagnostics") or {}
        reasons_same = all(ours_diag.get(r) == theirs_diag.get(r) for r in REASONS)
        res.same_reasons += reasons_same
        for name in DIAGNOSTICS:
            a, b = ours_diag.get(name), theirs_diag.get(name)
            if a is None and b is None:
                continue
            if a is None or b is None:
                res.null_mismatches[name] += 1
                continue
            fa, fb = float(a), float(b)  # type: ignore[arg-type]
            err = abs(fa - fb) / max(abs(fb), 1e-9)
            if math.isfinite(err) and err > res.max_rel_error[name]:
                res.max_rel_error[name] = err
        if (not same or not reasons_same) and len(res.first_disagreements) < 5:
            res.first_disagreements.append({
                "ordinal": recorded.get("ordinal"), "at_s": sched.at_s, "ours": ours, "dynamo": theirs,
                "ours_reason": ours_diag.get("load_decision_reason"),
                "dynamo_reason": theirs_diag.get("load_decision_reason")})
    return res
