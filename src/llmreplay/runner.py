"""From a :class:`RunConfig` to a run report: load and shape the trace, build the pools, replay, measure.

This is the one entry point the CLI, the sweep executors and tests share.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError

from llmreplay import __version__
from llmreplay.cluster.pool import Pool, PoolSpec
from llmreplay.cluster.router import RouterConfig, make_router
from llmreplay.config import RunConfig
from llmreplay.cost.power import energy_summary, step_power
from llmreplay.engine.config import EngineArgs, format_validation_error, parse_engine_args
from llmreplay.engine.perf.hw import HardwareSetup, resolve_hardware
from llmreplay.engine.perf.registry import build_engine_perf_model
from llmreplay.errors import InputError
from llmreplay.metrics.definitions import Sla, block_hit_rate, judge, ratio
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.metrics.misses import miss_reasons
from llmreplay.metrics.records import RequestRecords
from llmreplay.metrics.summary import compute_metrics, compute_sla
from llmreplay.metrics.timeseries import build_timeseries
from llmreplay.outputs import OutputPlan, plan_outputs, write_planned
from llmreplay.report.model import SCHEMA_ID, RunReport
from llmreplay.sim.idle import TICK_BY_TICK_ENV
from llmreplay.sim.replay import Replay, ReplayOptions, ReplayResult
from llmreplay.trace import load_trace
from llmreplay.trace.model import Trace
from llmreplay.trace.transform import jitter_arrivals, slice_trace, speed_up
from llmreplay.units import NS_PER_S, s_to_ns

if TYPE_CHECKING:  # imported by a run with a planner only: a plain run does not pay for the planner's modules
    from llmreplay.planner.config import PlannerConfig
    from llmreplay.planner.factory import PlannerLike
    from llmreplay.planner.planner import ScalingEvent
    from llmreplay.planner.scripted import ScriptedPolicy

SCHEMA = SCHEMA_ID


@dataclass
class RunOutput:
    """A finished run: the typed report (``model``), its JSON-ready form (``report``) and the objects behind it."""

    model: RunReport
    records: RequestRecords
    result: ReplayResult
    trace: Trace
    header: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.report:
            self.report = self.model.to_json_dict()


def prepare_trace(cfg: RunConfig, trace: Trace | None = None) -> Trace:
    """Load (unless given), slice, speed up and jitter the trace, in that order."""
    if trace is None:
        if cfg.trace is None:
            raise InputError("no trace given: pass a trace file (or --demo for the bundled demo trace).")
        trace = load_trace(cfg.trace, cfg.trace_format, cfg.trace_block_size)
    if cfg.start is not None or cfg.duration is not None or cfg.max_requests is not None:
        trace = slice_trace(trace, cfg.start, cfg.duration, cfg.max_requests)
    if cfg.arrival_speedup_ratio != 1.0:
        trace = speed_up(trace, cfg.arrival_speedup_ratio)
    if cfg.arrival_jitter:
        trace = jitter_arrivals(trace, cfg.arrival_jitter, cfg.seed)
    if len(trace) == 0:
        raise InputError(f"{cfg.trace}: no request is left after slicing (--start/--duration/--max-requests).")
    return trace


def build_pool_spec(name: str, args: EngineArgs, trace: Trace) -> tuple[PoolSpec, HardwareSetup, list[str]]:
    notes: list[str] = []
    hw = resolve_hardware(args)
    perf = build_engine_perf_model(args, hw)
    if args.num_gpu_blocks is not None:
        blocks = args.num_gpu_blocks
    else:
        blocks = hw.derive_num_gpu_blocks(args.block_size, args.gpu_memory_utilization, args.max_num_batched_tokens)
    unit = trace.block_size
    if trace.has_hashes and unit % args.block_size:
        raise InputError(
            f"--trace-block-size {unit} must be a multiple of the engine block_size {args.block_size}, "
            "so each trace hash block maps onto whole KV blocks."
        )
    if args.max_num_batched_tokens < args.max_num_seqs:
        raise InputError(
            f"engine args: max_num_batched_tokens ({args.max_num_batched_tokens}) must be >= max_num_seqs "
            f"({args.max_num_seqs}), as vLLM requires, so every running request can decode each step."
        )
    spec = PoolSpec(name, args, perf, blocks, hw.tp, unit if trace.has_hashes else max(unit, args.block_size),
                    kv_bytes_per_token=hw.kv_bytes_per_token)
    spec.power = step_power(hw)  # energy per step (llmreplay.cost.power)
    return spec, hw, notes


@dataclass
class Topology:
    """The pools of a run and how they were built (agg: one pool ``agg``; disagg: ``prefill`` + ``decode``)."""

    pools: dict[str, Pool]
    hardware: dict[str, HardwareSetup]
    start_workers: dict[str, int]
    router_name: str
    notes: list[str]

    @property
    def disagg(self) -> bool:
        return "prefill" in self.pools


def _router_config(cfg: RunConfig) -> RouterConfig:
    try:
        return RouterConfig.model_validate(cfg.router_config or {})
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "--router-config", sorted(RouterConfig.model_fields))) from None


def build_topology(cfg: RunConfig, trace: Trace, planner_cfg: PlannerConfig | None) -> Topology:
    """Parse engine args per pool, derive KV capacity and perf models, and create the workers present at t=0."""
    router_cfg = _router_config(cfg)
    router_name = cfg.router or ("kv" if trace.has_hashes else "round_robin")
    rng = np.random.default_rng(cfg.seed)
    notes: list[str] = []
    if not cfg.is_disagg:
        args = parse_engine_args(cfg.extra_engine_args, source="--extra-engine-args")
        spec, hw, spec_notes = build_pool_spec("agg", args, trace)
        if planner_cfg is not None and planner_cfg.decode_engine_num_gpu is not None:
            spec.gpus_per_worker = planner_cfg.decode_engine_num_gpu
        pool = Pool(spec, make_router(router_name, router_cfg, rng), LogHistogram(), fast_forward=cfg.fast_forward)
        pool.add_workers(cfg.num_workers, 0)
        return Topology({"agg": pool}, {"agg": hw}, {"agg": cfg.num_workers}, router_name, notes + spec_notes)
    mixed = [f for f in ("num_workers", "extra_engine_args") if f in cfg.model_fields_set]
    if mixed:
        raise InputError(
            "a disagg run (prefill/decode engine args or worker counts) cannot also take "
            + " or ".join("--" + f.replace("_", "-") for f in mixed)
            + ": give --num-prefill-workers / --num-decode-workers and --prefill-engine-args / --decode-engine-args."
        )
    icl = LogHistogram()
    pools: dict[str, Pool] = {}
    hardware: dict[str, HardwareSetup] = {}
    start: dict[str, int] = {}
    for role, raw, count, gpus in (
        ("prefill", cfg.prefill_engine_args, cfg.num_prefill_workers,
         planner_cfg.prefill_engine_num_gpu if planner_cfg else None),
        ("decode", cfg.decode_engine_args, cfg.num_decode_workers,
         planner_cfg.decode_engine_num_gpu if planner_cfg else None),
    ):
        args = parse_engine_args(raw, source=f"--{role}-engine-args")
        if args.worker_type not in (None, role):
            raise InputError(f"--{role}-engine-args: worker_type is '{args.worker_type}' but these are the {role} "
                             f"workers; use \"worker_type\": \"{role}\" or leave it out.")
        n = 1 if count is None else count
        if n == 0 and planner_cfg is None:
            raise InputError(f"--num-{role}-workers 0 with no planner: nothing would ever {role} a request. Give at "
                             "least 1, or a --planner-config that can scale the pool up.")
        spec, hw, spec_notes = build_pool_spec(role, args, trace)
        if gpus is not None:
            spec.gpus_per_worker = gpus
        notes += spec_notes
        # prefill: route by cached prefix (Dynamo's prefill router); decode: least KV in use (overlap weight 0)
        router = make_router(router_name if role == "prefill" else "kv",
                             router_cfg if role == "prefill" else RouterConfig(overlap_score_weight=0.0), rng)
        pool = Pool(spec, router, icl, fast_forward=cfg.fast_forward)
        pool.add_workers(n, 0)
        pools[role], hardware[role], start[role] = pool, hw, n
    if pools["prefill"].spec.unit_tokens != pools["decode"].spec.unit_tokens:
        raise InputError("prefill and decode engines must use the same block_size for a KV hand-off.")
    return Topology(pools, hardware, start, router_name, notes)


def run(
    cfg: RunConfig,
    trace: Trace | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunOutput:
    wall0 = time.perf_counter()
    planner_cfg: PlannerConfig | None = None
    notes: list[str] = []
    if cfg.planner_config is not None:
        from llmreplay.planner.config import parse_planner_config

        planner_cfg, notes = parse_planner_config(cfg.planner_config)
        topology_mode = "disagg" if cfg.is_disagg else "agg"
        if planner_cfg.mode is not None and planner_cfg.mode != topology_mode:
            raise InputError(f"planner_config.mode is '{planner_cfg.mode}' but the run is {topology_mode} "
                             "(disagg runs take prefill/decode engine args or worker counts).")
    trace = prepare_trace(cfg, trace)
    topo = build_topology(cfg, trace, planner_cfg)
    notes += topo.notes
    horizon = s_to_ns(cfg.max_sim_time_seconds) if cfg.max_sim_time_seconds is not None else None
    options = ReplayOptions(seed=cfg.seed, horizon_ns=horizon, concurrency=cfg.replay_concurrency,
                            fast_forward=cfg.fast_forward, progress=progress,
                            collapse_idle_ticks=os.environ.get(TICK_BY_TICK_ENV, "") in ("", "0"),
                            local_prefill_max_tokens=cfg.disagg_max_local_prefill_tokens,
                            fpm_detail_only_for_planner=True)
    replay = Replay(trace, topo.pools, options)
    planner: PlannerLike | ScriptedPolicy | None = None
    if planner_cfg is not None and planner_cfg.policy == "scripted":
        from llmreplay.planner.scripted import ScriptedPolicy

        planner = scripted = ScriptedPolicy(planner_cfg, topo.pools)
        for t_ns in scripted.times_ns:
            replay.at(t_ns, lambda r, t: scripted.apply(t, r.start_worker))
    elif planner_cfg is not None:
        from llmreplay.planner.factory import make_planner

        planner = make_planner(planner_cfg, topo.pools, granularity=cfg.benchmark_granularity)
        _check_tick_budget(cfg, trace, planner, horizon)
        if planner.period_ns > 0:
            options.ticks_before_arrivals = planner.ticks_before_arrivals
            replay.observer = planner
            replay.every(planner.period_ns, lambda r, t: planner.tick(t, r.start_worker, len(r.handoffs)),
                         idle=planner)
    result = replay.run()
    if planner is not None:
        notes += planner.warnings
    header = [f"trace: {trace.source} ({trace.format}, {len(trace):,} requests)"]
    for name, pool in topo.pools.items():
        spec, hw = pool.spec, topo.hardware[name]
        line = f"{name} engine: {hw.describe()} · {spec.perf.describe()}"
        if spec.args.hardware_defaulted:
            line += " (default hardware: pass aic_system / aic_model_path / aic_tp_size to change)"
        header.append(line)
        header.append(
            f"{name} KV cache: {spec.num_blocks:,} blocks × {spec.args.block_size} tokens = "
            f"{spec.num_blocks * spec.args.block_size:,} tokens per worker"
            + ("" if spec.args.num_gpu_blocks is not None else " (derived from GPU memory)")
        )
    sizes = ", ".join(f"{n} {name}" for name, n in topo.start_workers.items())
    header.append(
        f"cluster: {'disagg' if topo.disagg else 'agg'}, {sizes} worker(s) at start, router {topo.router_name}"
        + (", no planner" if planner_cfg is None else ", scripted schedule" if planner_cfg.policy == "scripted"
           else f", planner {planner_cfg.policy} policy, {planner_cfg.optimization_target} "
           f"({planner_cfg.load_predictor} predictor)")
    )
    report = build_report(cfg, trace, topo, result, wall0, planner)
    return RunOutput(report, result.records, result, trace, header, notes + list(trace.notes))


def _check_tick_budget(cfg: RunConfig, trace: Trace, planner: PlannerLike, horizon_ns: int | None) -> None:
    """Fail before the run when a planner that must tick one by one would tick more than ``max_planner_ticks``
    times over the trace: its cost then follows simulated time, not events (a long idle gap would run for
    hours)."""
    why = planner.ticks_one_by_one()
    if why is None or planner.period_ns <= 0 or len(trace) == 0:
        return
    span_ns = int(trace.arrival_ns[-1]) if horizon_ns is None else min(int(trace.arrival_ns[-1]), horizon_ns)
    ticks = span_ns // planner.period_ns
    if ticks > cfg.max_planner_ticks:
        period_s = planner.period_ns / NS_PER_S
        raise InputError(
            f"the planner would evaluate {ticks:,} ticks ({span_ns / NS_PER_S / 86400:,.1f} days of trace at one "
            f"tick every {period_s:g} s), above max_planner_ticks ({cfg.max_planner_ticks:,}). Its ticks over idle "
            f"stretches cannot be skipped ({why}), so the run's cost follows simulated time, not events. Use "
            "planner_config.load_predictor 'constant', shorten the trace (--max-sim-time-seconds, "
            "--start / --duration), or raise --max-planner-ticks on purpose.")


def build_report(cfg: RunConfig, trace: Trace, topo: Topology, result: ReplayResult, wall0: float,
                 planner: PlannerLike | ScriptedPolicy | None = None) -> RunReport:
    """The run report: every number comes from a metric definition (:mod:`llmreplay.metrics.definitions`)."""
    rec = result.records
    warmup_ns = s_to_ns(cfg.warmup_s)
    engines = [w.engine for p in result.pools.values() for w in p.workers]
    prompt = sum(e.prompt_tokens_admitted for e in engines)
    cached = sum(e.cached_tokens_admitted for e in engines)
    hash_blocks = np.diff(trace.hash_offsets) if trace.has_hashes else None
    metrics = compute_metrics(rec, result.icl, ratio(cached, prompt),
                              block_hit_rate(rec, hash_blocks, trace.block_size), warmup_ns)
    sla = Sla(cfg.sla_ttft_ms, cfg.sla_itl_ms, cfg.sla_e2e_ms)
    if not sla.any and planner is not None:  # the goodput SLA defaults to the planner's targets
        sla = Sla(planner.cfg.ttft, planner.cfg.itl, None)
    judgement = judge(rec, sla, warmup_ns) if sla.any else None
    sla_out = compute_sla(sla, judgement, metrics["duration_s"])
    timeseries = build_timeseries(rec, result.pools, result.horizon_ns, judgement, warmup_ns)
    if judgement is not None:
        sla_out["miss_reasons"] = miss_reasons(rec, judgement, sla, result.pools, timeseries["bin_s"],
                                               timeseries["t_s"][0])
    horizon = result.horizon_ns
    pools_out: dict[str, Any] = {}
    gpu_hours = 0.0
    peak_gpus = 0
    for name, pool in result.pools.items():
        gh = pool.gpu_hours(horizon)
        gpu_hours += gh
        busy_s = sum(w.engine.busy_ns for w in pool.workers) / NS_PER_S
        peak_kv = peak_queue = peak_waiting = 0
        for w in pool.workers:
            cols = w.engine.fpm.cols
            if cols["kv_used_blocks"]:
                peak_kv = max(peak_kv, max(cols["kv_used_blocks"]))
                peak_queue = max(peak_queue, max(cols["queued_prefill_tokens"]))
                peak_waiting = max(peak_waiting, max(cols["num_waiting"]))
        peak_workers = max((n for _, n in pool.provision_log), default=0)
        peak_gpus += peak_workers * pool.spec.gpus_per_worker
        pools_out[name] = {
            "workers_start": topo.start_workers[name],
            "workers_peak": peak_workers,
            "gpus_per_worker": pool.spec.gpus_per_worker,
            "gpu_hours": gh,
            "utilization": ratio(busy_s, pool.worker_seconds(horizon)),
            "kv_peak_fraction": peak_kv / pool.spec.num_blocks,
            "queued_prefill_tokens_peak": peak_queue,  # on one worker
            "waiting_requests_peak": peak_waiting,  # on one worker
            # disagg decode pool: most prefilled requests waiting at once for decode KV (the hand-off queue)
            "handoff_wait_peak": result.extras.get("handoff_wait_peak") if name == "decode" else None,
            "num_gpu_blocks": pool.spec.num_blocks,
            "block_size": pool.spec.args.block_size,
            "kv_capacity_tokens": pool.spec.num_blocks * pool.spec.args.block_size,
            "steps": sum(w.engine.steps for w in pool.workers),
            "preemptions": sum(w.engine.preemptions for w in pool.workers),
            "evicted_blocks": sum(w.engine.kv_cache.evicted_hash_blocks for w in pool.workers) * pool.spec.unit_tokens
            // pool.spec.args.block_size,
        }
    events = planner.events if planner is not None else []
    reversal_window = 3 * (planner.cfg.load_adjustment_interval if planner is not None else 0.0)
    config = cfg.resolved_dump()
    for name, pool in topo.pools.items():
        key = "extra_engine_args" if name == "agg" else f"{name}_engine_args"
        config[key] = pool.spec.args.model_dump(by_alias=False)
    if topo.disagg:
        config["num_prefill_workers"] = topo.start_workers["prefill"]
        config["num_decode_workers"] = topo.start_workers["decode"]
    config["topology"] = "disagg" if topo.disagg else "agg"
    config["router"] = topo.router_name
    config["trace_requests"] = len(trace)
    config["hardware"] = {name: {"gpu": hw.gpu.name, "model": hw.model.name, "tp": hw.tp,
                                 "kv_bytes_per_token": hw.kv_bytes_per_token, "describe": hw.describe()}
                          for name, hw in topo.hardware.items()}
    config["perf_model"] = {name: pool.spec.perf.describe() for name, pool in topo.pools.items()}
    config["num_gpu_blocks"] = {name: pool.spec.num_blocks for name, pool in topo.pools.items()}
    config["arrival_jitter"] = cfg.arrival_jitter or "none (arrivals as recorded)"
    if planner is not None:
        config["planner_config"] = planner.cfg.model_dump()
        for name, pool in topo.pools.items():
            key = "prefill_engine_num_gpu" if name == "prefill" else "decode_engine_num_gpu"
            config["planner_config"][key] = pool.spec.gpus_per_worker
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rss_mb = rss_kb / 1024 if sys.platform != "darwin" else rss_kb / 1024 / 1024
    wall = time.perf_counter() - wall0
    return RunReport.model_validate({
        "schema": SCHEMA_ID,
        "config": config,
        "requests": rec.counts(),
        "metrics": metrics,
        "sla": sla_out,
        "cost": {"gpu_hours": gpu_hours, "peak_gpus": peak_gpus, "replica_transitions": len(events),
                 "reversals": count_reversals(events, reversal_window),
                 **energy_summary(result.pools, horizon, int(rec.osl[rec.completed].sum()))},
        "pools": pools_out,
        "timeseries": timeseries,
        "planner": None if planner is None else {**planner.report(),
                                                  "config": planner.cfg.model_dump()},
        "sim": {
            "wall_s": wall,
            "replay_wall_s": result.wall_s,
            "simulated_s": horizon / NS_PER_S,
            "requests_per_wall_s": len(rec) / wall if wall > 0 else None,
            "simulated_s_per_wall_s": horizon / NS_PER_S / wall if wall > 0 else None,
            "events": result.events,
            "engine_steps": result.steps,
            "planner_wall_s": planner.wall_s if planner is not None else None,
            "peak_rss_mb": rss_mb,
            "version": __version__,
        },
    })


def count_reversals(events: list[ScalingEvent], window_s: float) -> int:
    """Changes that undo the previous change of the same component within ``window_s`` (flapping)."""
    last: dict[str, ScalingEvent] = {}
    n = 0
    for e in events:
        prev = last.get(e.component)
        if prev is not None and (e.to - e.from_) * (prev.to - prev.from_) < 0 and e.t_s - prev.t_s <= window_s:
            n += 1
        last[e.component] = e
    return n


def write_outputs(cfg: RunConfig, out: RunOutput, plan: OutputPlan | None = None) -> list[str]:
    """Write the files the config asks for (checked by :func:`plan_outputs` first, unless already planned),
    each atomically; return one line per file written."""
    return write_planned(plan if plan is not None else plan_outputs(cfg), out, dump_report)


def dump_report(report: RunReport | dict[str, Any]) -> str:
    """The run report as written to disk: indented JSON, no NaN (a missing value is null)."""
    import json

    if isinstance(report, RunReport):
        report = report.to_json_dict()
    return json.dumps(report, indent=2, allow_nan=False, default=_json_default) + "\n"


def _json_default(o: object) -> object:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(type(o).__name__)
