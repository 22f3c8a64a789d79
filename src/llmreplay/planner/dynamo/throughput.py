"""Throughput-based scaling, Dynamo's slow predictive loop (``dynamo/planner/core/throughput_scaling.py``).

From the predicted request count, ISL and OSL of the next interval: one engine's sustainable rate within the
SLA (a sweep over batch sizes of the learned perf model), then ``ceil(demand / engine rate)`` replicas, moved
at most ``max_throughput_scaling_replicas`` per tick and fitted under the GPU ceiling. With load scaling on it
is only a floor for the load loop (``set_lower_bound``); alone it scales (``scale``).
"""

from __future__ import annotations

import math

from llmreplay.planner.dynamo.state import Decision, ScalingState


def advance_throughput(st: ScalingState, duration_s: float, num_req: float | None, isl: float | None,
                       osl: float | None, kv_hit_rate: float | None) -> Decision | None:
    """``advance_throughput_from_prediction``."""
    cfg, diag = st.cfg, st.diag
    if not cfg.enable_throughput_scaling:
        diag.throughput_decision_reason = "disabled"
        return None
    if num_req is None or isl is None or osl is None:
        return None
    diag.predicted_num_req, diag.predicted_isl, diag.predicted_osl = num_req, isl, osl
    diag.predicted_kv_hit_rate = kv_hit_rate
    st.observe_kv_hit_rate(kv_hit_rate)
    if duration_s <= 0:
        diag.throughput_decision_reason = "no_traffic_data"
        return None
    demand = num_req / duration_s
    if st.is_agg:
        return _agg(st, demand, isl, osl, kv_hit_rate)
    return _disagg(st, demand, isl, osl, kv_hit_rate)


def _cap(st: ScalingState, desired: int, current: int) -> int:
    """``_cap_throughput_replicas``: at most ``max_throughput_scaling_replicas`` away from current."""
    limit = st.cfg.max_throughput_scaling_replicas
    return min(max(desired, max(0, current - limit)), current + limit)


def _agg(st: ScalingState, demand: float, isl: float, osl: float, kv_hit_rate: float | None) -> Decision | None:
    cfg, diag = st.cfg, st.diag
    cap = st.models["agg"].capacity(isl=isl, osl=osl, ttft_sla_s=cfg.ttft_ms / 1000, itl_sla_s=cfg.itl_ms / 1000,
                                    kv_hit_rate=kv_hit_rate)
    rps = cap.rps if cap is not None else 0.0
    not_ready = cap is None or rps <= 0
    if not_ready:
        diag.throughput_decision_reason = "model_not_ready"
        desired = st.num_d
    else:
        diag.engine_rps_prefill = diag.engine_rps_decode = rps
        desired = max(math.ceil(demand / rps), cfg.min_endpoint_for("decode"))
    desired = max(_cap(st, desired, st.num_d), cfg.min_endpoint_for("decode"))
    requested = desired
    desired, ceiling_reason = st.guard_single(desired, "decode", min_gpus=-1)
    if cfg.enable_load_scaling:
        st.lower_bound_d = desired
        diag.throughput_decision_reason = "model_not_ready" if not_ready else (
            "gpu_budget_guard_hold" if ceiling_reason == "gpu_budget_guard_hold" else "set_lower_bound")
        return None
    if st.pending_d and (not_ready or requested > st.num_d):
        return None
    desired, budget_reason = st.guard_single(desired, "decode")
    if desired == st.num_d and not st.pending_d:
        diag.throughput_decision_reason = "model_not_ready" if not_ready else (
            budget_reason or ceiling_reason or "no_change")
        return None
    diag.throughput_decision_reason = "model_not_ready" if not_ready else "scale"
    return Decision(num_decode=desired)


def _replicas(st: ScalingState, component: str, demand: float, isl: float, osl: float,
              kv_hit_rate: float | None) -> int | None:
    """``_compute_prefill_replicas`` / ``_compute_decode_replicas``."""
    cfg = st.cfg
    model = st.models[component]
    if component == "prefill":
        cap = model.capacity(isl=isl, osl=osl, ttft_sla_s=cfg.ttft_ms / 1000, kv_hit_rate=kv_hit_rate)
    else:
        cap = model.capacity(isl=isl, osl=osl, itl_sla_s=cfg.itl_ms / 1000)
    rps = cap.rps if cap is not None else 0.0
    if rps <= 0:
        st.diag.throughput_decision_reason = "model_not_ready"
        return None
    setattr(st.diag, f"engine_rps_{component}", rps)
    return max(math.ceil(demand / rps), cfg.min_endpoint_for(component))


def _disagg(st: ScalingState, demand: float, isl: float, osl: float, kv_hit_rate: float | None) -> Decision | None:
    cfg, diag = st.cfg, st.diag
    num_p = _replicas(st, "prefill", demand, isl, osl, kv_hit_rate)
    num_d = _replicas(st, "decode", demand, isl, osl, kv_hit_rate)
    not_ready = num_p is None or num_d is None
    if num_p is None or num_d is None:
        diag.throughput_decision_reason_prefill = "model_not_ready" if num_p is None else "partner_not_ready"
        diag.throughput_decision_reason_decode = "model_not_ready" if num_d is None else "partner_not_ready"
        num_p, num_d = st.num_p, st.num_d
    num_p = max(_cap(st, num_p, st.num_p), cfg.min_endpoint_for("prefill"))
    num_d = max(_cap(st, num_d, st.num_d), cfg.min_endpoint_for("decode"))
    bounded = (num_p, num_d)
    if (st.pending_p or st.pending_d) and not cfg.enable_load_scaling:
        raise NotImplementedError("start-up (pending) workers in a disagg throughput decision")
    num_p, num_d = st.fit_disagg_ceiling(num_p, num_d)
    current = (st.num_p, st.num_d)
    held = (num_p, num_d) == current and bounded != current
    if not not_ready:
        reason = "set_lower_bound" if cfg.enable_load_scaling else "scale"
        diag.throughput_decision_reason_prefill = diag.throughput_decision_reason_decode = reason
    if cfg.enable_load_scaling:
        st.lower_bound_p, st.lower_bound_d = num_p, num_d
        if not_ready:
            diag.throughput_decision_reason = "model_not_ready"
        elif held:
            diag.throughput_decision_reason = diag.throughput_decision_reason_prefill = \
                diag.throughput_decision_reason_decode = "gpu_budget_guard_hold"
        else:
            diag.throughput_decision_reason = "set_lower_bound"
        return None
    num_p, num_d, budget_reason = st.guard_disagg(num_p, num_d)
    if (num_p, num_d) == current:
        if not_ready:
            diag.throughput_decision_reason = "model_not_ready"
            return None
        hold = budget_reason or ("gpu_budget_guard_hold" if held else "no_change")
        diag.throughput_decision_reason = diag.throughput_decision_reason_prefill = \
            diag.throughput_decision_reason_decode = hold
        return None
    diag.throughput_decision_reason = "model_not_ready" if not_ready else "scale"
    return Decision(num_prefill=num_p, num_decode=num_d)
