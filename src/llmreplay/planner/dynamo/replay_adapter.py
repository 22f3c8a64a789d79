"""The Dynamo policy in the replay loop: what Dynamo's ``ReplayPlannerAdapter`` does around each tick
(``dynamo/planner/offline/replay_adapter.py``).

* Ticks come every ``scale_interval``; the policy says which loops run at each.
* FPMs: the latest forward pass of each routable worker, kept until the worker runs another (Dynamo's
  last-seen cache), pruned when the worker leaves; the wall time is that pass's duration. A worker that
  published nothing for :data:`IDLE_HEARTBEAT_S` (an idle one, or one whose first pass after a pause is still
  running) shows the zeroed heartbeat (wall time 0) Dynamo's FPM publisher sends then. The queue fields are
  the waiting queue as vLLM publishes it (:func:`fpm_queue`), as it was when that pass was scheduled.
* Worker counts: ready = active workers; the planner's current count = starting + active; expected = the
  last target it asked for; scaling is in progress while the two differ.
* Traffic (throughput ticks): requests that arrived in the window, mean ISL and OSL of those that completed in
  it (:mod:`llmreplay.planner.dynamo.traffic`), and the router's prefix-cache hit rate (0 under round robin,
  as in Dynamo).

Differences from Dynamo's mocker that remain are listed in ``docs/planner.md``.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from llmreplay.cluster.pool import Pool
from llmreplay.cluster.worker import State, Worker
from llmreplay.planner.config import PlannerConfig
from llmreplay.planner.dynamo.bootstrap import benchmark_fpms
from llmreplay.planner.dynamo.fpm import Fpm, FpmMap, Queued, Scheduled
from llmreplay.planner.dynamo.policy import EPS, DynamoPolicy, ScheduledTick, TickInput, Traffic
from llmreplay.planner.dynamo.settings import Capabilities, settings_from_config
from llmreplay.planner.dynamo.state import WorkerCounts
from llmreplay.planner.dynamo.traffic import TrafficWindow
from llmreplay.planner.planner import ScalingEvent, TickDiagnostics, _r, count_decisions, stretch_ticks, tick_dicts
from llmreplay.sim.idle import cycle_length, plain
from llmreplay.units import NS_PER_S as NS


@dataclass
class _Window:
    """Frontend counters since the last tick (the tick's observed diagnostics)."""

    arrivals: int = 0
    osl_sum: float = 0.0
    finished: int = 0
    isl_sum: float = 0.0
    ttft_sum_ms: float = 0.0
    itl_sum_ms: float = 0.0
    itl_samples: int = 0


def pool_capabilities(pool: Pool, num_gpu: int | None) -> Capabilities:
    spec = pool.spec
    return Capabilities(num_gpu=num_gpu or spec.gpus_per_worker,
                        max_num_batched_tokens=spec.args.max_num_batched_tokens, max_num_seqs=spec.args.max_num_seqs,
                        max_kv_tokens=spec.num_blocks * spec.args.block_size,
                        context_length=spec.args.max_model_len)


#: Dynamo's FPM publisher sends a zeroed snapshot (wall time 0) when no forward pass was published for this long
#: (``IDLE_HEARTBEAT_INTERVAL``, "matches vLLM's HEARTBEAT_INTERVAL = 1.0"; ``FPM_HEARTBEAT_INTERVAL_SECONDS`` in
#: ``dynamo/common/forward_pass_metrics.py``). In the reference run a worker's FPM is the heartbeat exactly when
#: its last pass ended 1 s or more before the tick (idle 1.0-8.6 s: heartbeat, 226 ticks; 0-0.996 s: the last
#: pass, 202 ticks), also when a new pass has started since but not ended.
IDLE_HEARTBEAT_S = 1.0


def fpm_queue(w: Worker) -> Queued:
    """The FPM's queue as vLLM publishes it (and Dynamo's mocker, ``vllm/core.rs`` ``compute_fpm``): waiting
    requests only, fresh ones as queued prefill (whole prompts), preempted ones as queued decode (prompt +
    generated); a running request's unprefilled remainder is not queued. The mocker computes it when it
    schedules the pass (``execute_pass_internal``), so it is the queue of the last completed pass's start, after
    its admissions: a request that arrived while that pass ran, or after, is not in it."""
    n_p, t_p, n_d, t_d = w.view.published_queue()
    return Queued(num_prefill_requests=n_p, sum_prefill_tokens=t_p, num_decode_requests=n_d,
                  sum_decode_kv_tokens=t_d)


def heartbeat_due(last_pass_end_ns: int | None, created_ns: int, now: int) -> bool:
    """Whether the worker's last published FPM at ``now`` is the zeroed idle heartbeat: nothing published for
    :data:`IDLE_HEARTBEAT_S` since its last pass ended (or, before its first pass, since it started)."""
    since = last_pass_end_ns if last_pass_end_ns is not None else created_ns
    return now - since >= round(IDLE_HEARTBEAT_S * NS)


@dataclass
class DynamoPlanner:
    """Drop-in for :class:`llmreplay.planner.planner.Planner` that decides with the Dynamo policy."""

    cfg: PlannerConfig
    pools: dict[str, Pool]
    granularity: int = 8
    ticks: list[TickDiagnostics] = field(default_factory=list)
    events: list[ScalingEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: whether a tick runs before the trace arrivals of its instant are routed (set in __post_init__)
    ticks_before_arrivals = False

    def __post_init__(self) -> None:
        t0 = time.perf_counter()
        self.disagg = "prefill" in self.pools
        # Dynamo's disagg replay ticks before routing the arrivals of the tick's instant, its agg replay after
        # (its two loops differ; both count those arrivals in the window the tick reads). Reruns of the reference
        # set-ups: disagg, a new prefill worker got arrivals of its scale-up instant 7 times of 7 and a drained
        # one 0 of 29; agg, a new worker 0 of 35 and a drained one 27 of 29.
        self.ticks_before_arrivals = self.disagg
        mode = "disagg" if self.disagg else "agg"
        self.settings = settings_from_config(self.cfg, mode)
        self.decode_pool = self.pools["decode" if self.disagg else "agg"]
        self.prefill_pool = self.pools.get("prefill")
        d_caps = pool_capabilities(self.decode_pool, self.cfg.decode_engine_num_gpu)
        p_caps = pool_capabilities(self.prefill_pool, self.cfg.prefill_engine_num_gpu) if self.prefill_pool else None
        self.policy = DynamoPolicy(self.settings, p_caps, d_caps)
        for pool in self.pools.values():  # the FPM queue as of each pass (fpm_queue)
            pool.fpm_queue_snapshots = True
            for w in pool.workers:
                w.engine.fpm_queue_snapshots = True
        self.bootstrap_counts = {"prefill": 0, "decode": 0}
        if not self.settings.easy and self.cfg.pre_deployment_sweeping_mode == "rapid":
            p_pool = self.prefill_pool or self.decode_pool
            p_src = p_caps or d_caps
            prefill, _ = benchmark_fpms(p_pool.spec.perf, p_src.max_num_batched_tokens, p_src.max_num_seqs,
                                        p_src.max_kv_tokens, self.granularity, p_pool.spec.args.speedup_ratio)
            _, decode = benchmark_fpms(self.decode_pool.spec.perf, d_caps.max_num_batched_tokens,
                                       d_caps.max_num_seqs, d_caps.max_kv_tokens, self.granularity,
                                       self.decode_pool.spec.args.speedup_ratio)
            self.policy.bootstrap(prefill, decode)
            self.bootstrap_counts = {"prefill": len(prefill), "decode": len(decode)}
            if self.decode_pool.spec.perf.kind != "aic":
                self.warnings.append(
                    f"bootstrap_from_{self.decode_pool.spec.perf.kind}_perf_model: Dynamo bootstraps its planner from "
                    "AIConfigurator only (otherwise it scales on load alone); here the engine's own perf model "
                    "seeds the regression. Use perf_model 'aic' for Dynamo's behaviour.")
        self.pending_tick: ScheduledTick = self.policy.initial_tick(0.0)
        self.period_ns = round(self.settings.scale_interval_s * NS)
        self.fpm_cache: dict[str, dict[tuple[str, int], Fpm]] = {"prefill": {}, "decode": {}}
        self.fpm_seen: dict[tuple[str, int], int] = {}
        self.target: dict[str, int | None] = {"prefill": None, "decode": None}
        self.tick_window = _Window()
        self.traffic_window = TrafficWindow()  # since the last throughput tick
        self.last_tp_ns = 0
        # the router requests enter by (prefill's in disagg): ours routes decode by KV load whatever the user
        # chose, which is no prefix-cache router; under round robin Dynamo reports a hit rate of 0
        entry = self.prefill_pool or self.decode_pool
        self.kv_router = getattr(entry.router, "name", "") == "kv"
        # the policy keys its loops by float seconds: a collapsed idle stretch is provably exact only while
        # every tick time and interval is a float without rounding (multiples of 1/512 s, see idle_fingerprint)
        st = self.settings
        loops = [st.scale_interval_s, st.load_interval_s] + (
            [st.throughput_interval_s] if st.enable_throughput_scaling else [])
        self.exact_clock = all(x * 512 == round(x * 512) for x in loops) and self.period_ns == st.scale_interval_s * NS
        self.wall_s = time.perf_counter() - t0

    # ------------------------------------------------------------------ frontend hooks
    def arrived(self, isl: int, osl: int) -> None:
        self.traffic_window.arrived()
        w = self.tick_window
        w.arrivals += 1
        w.osl_sum += osl

    def finished(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int, osl: int = 0) -> None:
        self.traffic_window.finished(isl, osl, cached)
        w = self.tick_window
        w.finished += 1
        w.isl_sum += isl
        w.ttft_sum_ms += ttft_ms
        if itl_ms is not None:
            w.itl_sum_ms += itl_ms
            w.itl_samples += 1

    # ------------------------------------------------------------------ observation
    @staticmethod
    def _last_record(w: Worker, rec: dict[str, Sequence[int]]) -> Fpm:
        """Dynamo's FPM of the worker's last forward pass among the records just read."""
        i = len(rec["t_end_ns"]) - 1
        steps = max(1, rec["steps"][i])
        single = steps == 1  # a fast-forwarded stretch is decode only
        return Fpm(
            worker_id=str(w.id), dp_rank=0, wall_time=(rec["t_end_ns"][i] - rec["t_start_ns"][i]) / steps / NS,
            scheduled=Scheduled(num_prefill_requests=rec["num_prefill_requests"][i] if single else 0,
                                sum_prefill_tokens=rec["sum_prefill_tokens"][i] if single else 0,
                                sum_prefill_kv_tokens=rec["sum_prefill_kv_tokens"][i] if single else 0,
                                num_decode_requests=rec["num_decode_requests"][i],
                                sum_decode_kv_tokens=rec["decode_kv_last"][i]),
            queued=fpm_queue(w),
        )

    def _fpms(self, role: str, pool: Pool, now: int) -> FpmMap | None:
        """The last-seen FPM of every active worker (records are read once, then released by the log)."""
        cache = self.fpm_cache[role]
        live: set[str] = set()
        for w in pool.workers:
            if w.state != State.ACTIVE:
                continue
            w.engine.sync(now)
            live.add(str(w.id))
            log = w.view.fpm
            key = (pool.name, w.id)
            seen, n = self.fpm_seen.get(key, 0), len(log)
            rec = log.read_since(seen) if n > seen else None
            self.fpm_seen[key] = n
            last_end = log.cols["t_end_ns"][-1] if n else None
            if heartbeat_due(last_end, w.created_ns, now):
                cache[(str(w.id), 0)] = Fpm(worker_id=str(w.id))
            elif rec is not None:
                cache[(str(w.id), 0)] = self._last_record(w, rec)
        for k in [k for k in cache if k[0] not in live]:
            del cache[k]
        return dict(cache) if cache else None

    def _counts(self) -> WorkerCounts:
        def role(pool: Pool | None, name: str) -> tuple[int | None, int | None, bool]:
            if pool is None:
                return None, None, False
            ready = pool.count(State.ACTIVE)
            current = pool.count(State.STARTING, State.ACTIVE)
            target = self.target[name]
            expected = target if target is not None else current
            return ready, expected, target is not None and target != current

        p_ready, p_exp, p_prog = role(self.prefill_pool, "prefill")
        d_ready, d_exp, d_prog = role(self.decode_pool, "decode")
        return WorkerCounts(ready_num_prefill=p_ready, ready_num_decode=d_ready, expected_num_prefill=p_exp,
                            expected_num_decode=d_exp, prefill_scaling_in_progress=p_prog,
                            decode_scaling_in_progress=d_prog)

    def _traffic(self, now: int) -> Traffic | None:
        w = self.traffic_window
        return w.traffic((now - self.last_tp_ns) / NS, w.prefix_hit_rate if self.kv_router else 0.0)

    # ------------------------------------------------------------------ the tick
    def tick(self, now: int, start_worker: Any, handoffs_waiting: int = 0) -> None:
        t0 = time.perf_counter()
        sched = self.pending_tick
        traffic = None
        if sched.need_traffic_metrics:
            traffic = self._traffic(now)
        inp = TickInput(now_s=now / NS, traffic=traffic, worker_counts=self._counts())
        if sched.need_worker_fpm:
            inp.fpm_decode = self._fpms("decode", self.decode_pool, now)
            if self.prefill_pool is not None:
                inp.fpm_prefill = self._fpms("prefill", self.prefill_pool, now)
            inp.have_fpm = True
        effects = self.policy.tick(sched, inp)
        if sched.need_traffic_metrics:
            self.traffic_window = TrafficWindow()
            self.last_tp_ns = now
        self.pending_tick = effects.next_tick
        if effects.scale_to is not None:
            if self.prefill_pool is not None and effects.scale_to.num_prefill is not None:
                self._scale("prefill", self.prefill_pool, effects.scale_to.num_prefill, now, start_worker)
            if effects.scale_to.num_decode is not None:
                self._scale("decode", self.decode_pool, effects.scale_to.num_decode, now, start_worker)
        self._record(now, sched, effects.diagnostics, traffic)
        self.wall_s += time.perf_counter() - t0

    def _scale(self, role: str, pool: Pool, target: int, now: int, start_worker: Any) -> None:
        current = pool.count(State.STARTING, State.ACTIVE)
        if target == current:
            return
        self.target[role] = target
        component = role if self.disagg else "agg"
        self.events.append(ScalingEvent(round(now / NS, 6), component, current, target,
                                        "scale_up" if target > current else "scale_down"))
        for _ in range(target - current):
            start_worker(pool, now)
        for _ in range(current - target):
            pool.drain_worker(now)

    def _record(self, now: int, sched: ScheduledTick, diag: Any, traffic: Traffic | None) -> None:
        w = self.tick_window
        span = self.settings.scale_interval_s
        d = TickDiagnostics(t_s=round(now / NS, 6))
        d.replicas_decode = self.decode_pool.count(State.STARTING, State.ACTIVE)
        if self.prefill_pool is not None:
            d.replicas_prefill = self.prefill_pool.count(State.STARTING, State.ACTIVE)
        if self.settings.enable_throughput_scaling:
            d.floor_decode = diag.throughput_lower_bound_decode
            if self.prefill_pool is not None:
                d.floor_prefill = diag.throughput_lower_bound_prefill
        d.observed_rps = _r(w.arrivals / span) if span > 0 else None
        d.observed_isl = _r(w.isl_sum / w.finished) if w.finished else None
        d.observed_osl = _r(w.osl_sum / w.arrivals) if w.arrivals else None
        d.observed_ttft_ms = _r(w.ttft_sum_ms / w.finished) if w.finished else None
        d.observed_itl_ms = _r(w.itl_sum_ms / w.itl_samples) if w.itl_samples else None
        if diag.predicted_num_req is not None and traffic is not None and traffic.duration_s > 0:
            d.predicted_rps = _r(diag.predicted_num_req / traffic.duration_s)
        d.predicted_isl, d.predicted_osl = _r(diag.predicted_isl), _r(diag.predicted_osl)
        d.est_ttft_ms, d.est_itl_ms = _r(diag.estimated_ttft_ms), _r(diag.estimated_itl_ms)
        d.engine_rps_prefill, d.engine_rps_decode = _r(diag.engine_rps_prefill), _r(diag.engine_rps_decode)
        d.reason_load = diag.load_decision_reason
        d.reason_throughput = diag.throughput_decision_reason
        if self.disagg:
            d.reason_load_prefill, d.reason_load_decode = diag.load_decision_reason_prefill, \
                diag.load_decision_reason_decode
            d.reason_throughput_prefill = diag.throughput_decision_reason_prefill
            d.reason_throughput_decode = diag.throughput_decision_reason_decode
        else:
            d.reason_load_decode, d.reason_throughput_decode = d.reason_load, d.reason_throughput
        self.ticks.append(d)
        self.tick_window = _Window()

    # ------------------------------------------------------------------ idle stretches (llmreplay.sim.idle)
    def ticks_one_by_one(self) -> str | None:
        """Why this planner's idle ticks can never be collapsed (None: they can, once they repeat)."""
        if self.policy.predictor is not None and self.policy.predictor.name == "arima":
            return ("Dynamo's ARIMA load predictor refits on every throughput interval, so no idle tick "
                    "repeats the one before")
        if not self.exact_clock:
            return ("an interval is not a multiple of 1/512 s, so Dynamo's float-second clock rounds and no "
                    "idle tick provably repeats")
        return None

    @property
    def cycle_ticks(self) -> int:
        st = self.settings
        return cycle_length(st.scale_interval_s, [st.load_interval_s] + (
            [st.throughput_interval_s] if st.enable_throughput_scaling else []), EPS)

    def idle_fingerprint(self, now: int) -> Hashable | None:
        """Everything a later tick reads, relative to ``now``: the scaling state (inventory, floors, perf models
        and their FPM windows), the predictors' forecasting state, time since each loop last ran, the FPM
        caches, the frontend windows, the targets asked for, and the event and warning counts. None under
        Dynamo's ARIMA after traffic (it refits on every window) or when the clock is not float-exact."""
        predictor = self.policy.predictor
        forecast = predictor.fingerprint() if predictor is not None else ()
        if forecast is None or not self.exact_clock:
            return None
        pol, now_s = self.policy, now / NS
        since = (now_s - pol.last_tick_s, now_s - pol.last_load_s,
                 now_s - pol.last_throughput_s if self.settings.enable_throughput_scaling else None,
                 now - self.last_tp_ns if self.settings.enable_throughput_scaling else None)
        unread = tuple(len(w.view.fpm) - self.fpm_seen.get((p.name, w.id), 0)
                       for p in self.pools.values() for w in p.workers)
        pending = replace(self.pending_tick, at_s=self.pending_tick.at_s - now_s)
        return (plain(pol.state, frozenset({"cfg", "caps_prefill", "caps_decode", "diag"})), plain(forecast),
                plain(since), plain(pending), plain(self.fpm_cache), plain(self.fpm_seen),
                unread, plain(self.target), plain(self.tick_window), plain(self.traffic_window),
                len(self.events), len(self.warnings))

    def collapse(self, cycles: int, cycle_ticks: int, period_ns: int) -> None:
        span = cycles * cycle_ticks * period_ns
        pol = self.policy

        def shifted(t_s: float) -> float:
            return (round(t_s * NS) + span) / NS

        pol.last_tick_s, pol.last_load_s = shifted(pol.last_tick_s), shifted(pol.last_load_s)
        if self.settings.enable_throughput_scaling:
            pol.last_throughput_s = shifted(pol.last_throughput_s)
            self.last_tp_ns += span
        self.pending_tick = pol.next_tick()
        stretch_ticks(self.ticks, cycles, cycle_ticks, period_ns)

    # ------------------------------------------------------------------ report
    def report(self) -> dict[str, Any]:
        decisions = count_decisions(self.ticks)
        stores = {name: {store: {"retained": len(s.samples), "coef": None if s.coef is None else list(s.coef)}
                         for store, s in m.regression.stores.items()}
                  for name, m in self.policy.state.models.items()}
        return {
            "policy": "dynamo",
            "ticks": tick_dicts(self.ticks),
            "decisions": decisions,
            "events": [e.to_dict() for e in self.events],
            "bootstrap": {"benchmark_granularity": self.granularity,
                          "prefill_fpm_count": self.bootstrap_counts["prefill"],
                          "decode_fpm_count": self.bootstrap_counts["decode"]},
            "regression": stores,
        }

