"""The Dynamo policy: one planner tick, as Dynamo 1.6.1's builtin plugin pipeline runs it.

Order within a tick (``plugins/orchestrator/engine_adapter.py`` ``tick`` and the builtins of
``plugins/builtins/local_planner.py``): read worker counts; on a load tick tune the perf model with the FPMs;
PREDICT (throughput tick: the load predictors take the traffic window); PROPOSE (the load plugin first
refreshes the throughput floors, then decides; the throughput plugin alone decides only without load
scaling); project the proposal onto ``scale_to`` (no change → null) after the final GPU clamp; schedule the
next tick one ``scale_interval`` later, flagging which loops are due.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmreplay.planner.dynamo import budget
from llmreplay.planner.dynamo.fpm import Fpm, FpmMap
from llmreplay.planner.dynamo.load import advance_load
from llmreplay.planner.dynamo.predictors import LoadPredict
from llmreplay.planner.dynamo.settings import Capabilities, DynamoSettings
from llmreplay.planner.dynamo.state import Decision, Diagnostics, ScalingState, WorkerCounts
from llmreplay.planner.dynamo.throughput import advance_throughput

EPS = 1e-9


@dataclass(frozen=True)
class ScheduledTick:
    """When the next tick runs and what it needs (``ScheduledTick``)."""

    at_s: float
    run_load_scaling: bool = False
    run_throughput_scaling: bool = False
    need_traffic_metrics: bool = False
    traffic_metrics_duration_s: float = 0.0
    need_worker_fpm: bool = False


@dataclass(frozen=True)
class Traffic:
    """The frontend's traffic over the window since the last throughput tick (``TrafficObservation``)."""

    duration_s: float
    num_req: float
    isl: float
    osl: float
    kv_hit_rate: float | None = None


@dataclass
class TickInput:
    now_s: float
    traffic: Traffic | None = None
    worker_counts: WorkerCounts | None = None
    fpm_prefill: FpmMap | None = None
    fpm_decode: FpmMap | None = None
    have_fpm: bool = False


@dataclass
class Effects:
    scale_to: Decision | None
    next_tick: ScheduledTick
    diagnostics: Diagnostics


class DynamoPolicy:
    def __init__(self, cfg: DynamoSettings, prefill: Capabilities | None, decode: Capabilities) -> None:
        self.cfg = cfg
        self.state = ScalingState(cfg, prefill, decode)
        self.predictor = LoadPredict(cfg.load_predictor) if cfg.enable_throughput_scaling else None
        self.last_tick_s = 0.0
        self.last_load_s = 0.0
        self.last_throughput_s = 0.0

    # ------------------------------------------------------------------ set-up
    def bootstrap(self, prefill_fpms: list[Fpm], decode_fpms: list[Fpm]) -> None:
        """Benchmark FPMs before the first tick (agg: prefill then decode points into one model)."""
        if self.cfg.easy:
            return
        models = self.state.models
        if "agg" in models:
            models["agg"].observe(prefill_fpms + decode_fpms)
        else:
            models["prefill"].observe(prefill_fpms)
            models["decode"].observe(decode_fpms)

    def initial_tick(self, start_s: float = 0.0) -> ScheduledTick:
        self.last_tick_s = self.last_load_s = self.last_throughput_s = start_s
        return self.next_tick()

    def next_tick(self) -> ScheduledTick:
        """``_compute_next_scheduled_tick``: one ``scale_interval`` on; each loop runs when its interval is due."""
        cfg = self.cfg
        at = self.last_tick_s + cfg.scale_interval_s
        load = at - self.last_load_s >= cfg.load_interval_s - EPS
        throughput = cfg.enable_throughput_scaling and at - self.last_throughput_s >= cfg.throughput_interval_s - EPS
        return ScheduledTick(at_s=at, run_load_scaling=load, run_throughput_scaling=throughput,
                             need_traffic_metrics=throughput,
                             traffic_metrics_duration_s=cfg.throughput_interval_s if throughput else 0.0,
                             need_worker_fpm=load and (cfg.enable_load_scaling or not cfg.easy))

    # ------------------------------------------------------------------ the tick
    def tick(self, sched: ScheduledTick, inp: TickInput) -> Effects:
        cfg, st = self.cfg, self.state
        st.begin_tick()
        if inp.worker_counts is not None:
            st.observe_worker_counts(inp.worker_counts)
        if sched.run_load_scaling and not cfg.easy and inp.have_fpm:
            st.observe_fpm(inp.fpm_prefill, inp.fpm_decode)
        self.last_tick_s = inp.now_s
        if sched.run_load_scaling:
            self.last_load_s = inp.now_s
        if sched.run_throughput_scaling:
            self.last_throughput_s = inp.now_s

        prediction: tuple[float, float, float] | None = None
        predict_reason: str | None = None
        if sched.run_throughput_scaling and self.predictor is not None:
            if inp.traffic is None:
                predict_reason = "no_traffic_data"
            else:
                t = inp.traffic
                self.predictor.observe(t.num_req, t.isl, t.osl, t.kv_hit_rate)
                prediction = self.predictor.predict()
        kv_pred = self.predictor.last_kv_hit_rate if self.predictor is not None else None

        def throughput() -> Decision | None:
            assert inp.traffic is not None and prediction is not None
            return advance_throughput(st, inp.traffic.duration_s, *prediction, kv_pred)

        decision: Decision | None = None
        if sched.run_load_scaling and cfg.enable_load_scaling:
            if prediction is not None:
                throughput()
            if prediction is not None:
                st.observe_kv_hit_rate(kv_pred)
            decision = advance_load(st, inp.fpm_prefill, inp.fpm_decode)
        if sched.run_throughput_scaling and cfg.enable_throughput_scaling and prediction is not None:
            tp = throughput()
            if decision is None:
                decision = tp
        scale_to = self._project(decision, inp.worker_counts or WorkerCounts())
        diag = st.diagnostics()
        if prediction is not None:
            diag.predicted_num_req, diag.predicted_isl, diag.predicted_osl = prediction
            diag.predicted_kv_hit_rate = kv_pred
        elif sched.run_throughput_scaling and predict_reason and diag.throughput_decision_reason is None:
            diag.throughput_decision_reason = predict_reason
        if sched.run_load_scaling and not cfg.enable_load_scaling:
            diag.load_decision_reason = "disabled"
        return Effects(scale_to=scale_to, next_tick=self.next_tick(), diagnostics=diag)

    # ------------------------------------------------------------------ projection
    def _project(self, decision: Decision | None, counts: WorkerCounts) -> Decision | None:
        """``_project_scale_to``: final GPU clamp, then no change → null (pending workers: not supported)."""
        if decision is None:
            return None
        cfg, st = self.cfg, self.state
        cur_p, cur_d = counts.ready_num_prefill, counts.ready_num_decode
        num_p, num_d = decision.num_prefill, decision.num_decode
        if st.is_agg:
            num_p = None
            if num_d is not None:
                d_min = cfg.min_endpoint_for("decode")
                num_d = budget.clamp_single(max(num_d, d_min), st.caps_decode.num_gpu, cfg.min_gpu_budget,
                                            cfg.max_gpu_budget, d_min)
        else:
            base_p = num_p if num_p is not None else cur_p
            base_d = num_d if num_d is not None else cur_d
            if base_p is not None and base_d is not None and st.caps_prefill is not None:
                p_min, d_min = cfg.min_endpoint_for("prefill"), cfg.min_endpoint_for("decode")
                cp, cd = budget.clamp_pair(max(base_p, p_min), max(base_d, d_min), st.caps_prefill.num_gpu,
                                           st.caps_decode.num_gpu, cfg.min_gpu_budget, cfg.max_gpu_budget, p_min, d_min)
                num_p, num_d = (cp if num_p is not None else None), (cd if num_d is not None else None)
        if (num_p is None or num_p == cur_p) and (num_d is None or num_d == cur_d):
            return None
        return Decision(num_prefill=num_p, num_decode=num_d)
