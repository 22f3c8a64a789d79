"""Load-based scaling, Dynamo's fast reactive loop (``dynamo/planner/core/load_scaling.py``).

SLA target: per worker, estimate the TTFT of a new request (drain the queue plus one average prompt) and the
ITL of the next decode pass through the learned perf model. Scale up by one when *every* worker's estimate
breaks the SLA; scale down by one only when consolidating N workers onto N−1 (queues and KV × N/(N−1)) keeps
every survivor within ``load_scaling_down_sensitivity`` % of the SLA (else ``scale_down_refused_consolidation``).
Threshold targets (throughput, latency, load) compare queue and KV utilisation with static thresholds.
Throughput floors and the GPU budget bound the result (``scale_down_capped_by_throughput``,
``gpu_budget_guard_hold``).
"""

from __future__ import annotations

from llmreplay.planner.dynamo.fpm import Fpm, FpmMap
from llmreplay.planner.dynamo.state import Decision, ScalingState

#: easy-mode thresholds: prefill queue / context_length, decode KV utilisation (load_scaling.py constants)
PREFILL_THRESHOLDS = {"throughput": (1.0, 0.1), "latency": (0.1, 0.0)}
DECODE_THRESHOLDS = {"throughput": (1.0, 0.6), "latency": (0.4, 0.1)}
REASON_PRIORITY = {"scale_up": 4, "scale_down_capped_by_throughput": 3, "scale_down": 2, "no_change": 1}
REFUSED = "scale_down_refused_consolidation"


def advance_load(st: ScalingState, prefill: FpmMap | None, decode: FpmMap | None) -> Decision | None:
    """One load tick (``advance_load``): the proposal, with start-up reductions applied."""
    if not st.cfg.enable_load_scaling:
        st.diag.load_decision_reason = "disabled"
        return None
    decision = _advance_agg(st, decode) if st.is_agg else _advance_disagg(st, prefill, decode)
    if decision is not None and (st.pending_p or st.pending_d):
        decision.num_prefill = st.startup_reduction(decision.num_prefill, st.num_p, st.pending_p)
        decision.num_decode = st.startup_reduction(decision.num_decode, st.num_d, st.pending_d)
        if decision.num_prefill is None and decision.num_decode is None:
            return None
    return decision


# ---------------------------------------------------------------------- aggregated
def _advance_agg(st: ScalingState, fpms: FpmMap | None) -> Decision | None:
    cfg = st.cfg
    if not fpms:
        st.diag.load_decision_reason = "no_fpm_data"
        return None
    n = st.num_d
    if st.load_scaling_blocked("decode"):
        st.diag.load_decision_reason = "scaling_in_progress"
        return None
    if not st.fpm_covers_workers(fpms, n):
        st.diag.load_decision_reason = "worker_count_mismatch"
        return None
    if cfg.easy:
        easy = _agg_easy(st, fpms, n)
        if easy is None or ((st.pending_p or st.pending_d) and easy > n):
            return None
        original = easy
        desired = max(easy, cfg.min_endpoint_for("decode"))
        if cfg.enable_throughput_scaling:
            desired = max(desired, st.lower_bound_d)
        desired, budget_reason = st.guard_single(desired, "decode")
        _single_reason(st, desired, original, n, st.pending_d, budget_reason)
        return Decision(num_decode=desired)
    model = st.models["agg"]
    if not model.ready:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    p_desired = _agg_prefill(st, fpms, n)
    p_refused = st.diag.load_decision_reason == REFUSED
    d_desired = _agg_decode(st, fpms, n)
    any_refused = p_refused or st.diag.load_decision_reason == REFUSED
    if p_desired is not None and p_desired > n:
        desired = p_desired
    elif d_desired is not None and d_desired > n:
        desired = d_desired
    elif p_desired is None and d_desired is not None and d_desired < n:
        desired = d_desired  # prefill signal unavailable: decode alone may scale down
    elif p_desired is not None and p_desired < n and d_desired is not None and d_desired < n:
        desired = max(p_desired, d_desired)
    else:
        desired = n
    if (st.pending_p or st.pending_d) and desired > n:
        return None
    original = desired
    desired = max(desired, cfg.min_endpoint_for("decode"))
    if cfg.enable_throughput_scaling:
        desired = max(desired, st.lower_bound_d)
    desired, budget_reason = st.guard_single(desired, "decode")
    floor_capped = desired > original and original < n
    cancel_startup = (not any_refused and st.pending_d > 0 and p_desired is not None and d_desired is not None
                      and p_desired <= n and d_desired <= n)
    if desired == n and not cancel_startup:
        if budget_reason is not None:
            st.diag.load_decision_reason = budget_reason
        elif any_refused and not floor_capped:
            st.diag.load_decision_reason = REFUSED
        else:
            st.diag.load_decision_reason = "scale_down_capped_by_throughput" if floor_capped else "no_change"
        return None
    if desired < n + st.pending_d:
        st.diag.load_decision_reason = "scale_down_capped_by_throughput" if floor_capped else "scale_down"
    else:
        st.diag.load_decision_reason = "scale_up"
    if budget_reason is not None:
        st.diag.load_decision_reason = budget_reason
    return Decision(num_decode=desired)


def _single_reason(st: ScalingState, desired: int, original: int, n: int, pending: int,
                   budget_reason: str | None) -> None:
    if desired < n + pending:
        st.diag.load_decision_reason = "scale_down_capped_by_throughput" if desired > original else "scale_down"
    elif desired > n:
        st.diag.load_decision_reason = "scale_up"
    else:
        st.diag.load_decision_reason = "no_change"
    if budget_reason is not None:
        st.diag.load_decision_reason = budget_reason


def _consolidation(n: int) -> float:
    return n / (n - 1) if n > 1 else 1.0


def _agg_prefill(st: ScalingState, fpms: FpmMap, n: int) -> int | None:
    """Agg TTFT side (``_agg_prefill_scaling``): queued prefill next to the current decode batch."""
    cfg, model = st.cfg, st.models["agg"]
    sens = cfg.load_scaling_down_sensitivity / 100.0
    c = _consolidation(n)
    estimates: list[float] = []
    can_down = n > 1 or st.pending("decode") > 0
    refused = False
    for key in sorted(fpms):
        f = fpms[key]
        est = model.queued_prefill_time(f, kv_hit_rate=st.last_kv_hit_rate)
        if est is not None:
            estimates.append(est * 1000)
        if can_down:
            t_own = model.queued_prefill_time(f, kv_hit_rate=st.last_kv_hit_rate, queue_scale=0.0,
                                              decode_scale=c, include_queued_decode=True)
            post = model.queued_prefill_time(f, kv_hit_rate=st.last_kv_hit_rate, queue_scale=c,
                                             decode_scale=c, include_queued_decode=True)
            if t_own is None or post is None:
                can_down = False
            else:
                budget_ms = (cfg.ttft_ms - t_own * 1000) * sens
                if budget_ms <= 0 or post * 1000 - t_own * 1000 >= budget_ms:
                    can_down, refused = False, True
    if estimates:
        st.diag.estimated_ttft_ms = max(estimates)
    decision = scale_decision(st, estimates, cfg.ttft_ms, n, cfg.min_endpoint_for("decode"), can_down)
    if decision is None and refused:
        st.diag.load_decision_reason = REFUSED
        return n  # a refusal is a signal, not a missing one
    return decision


def _agg_decode(st: ScalingState, fpms: FpmMap, n: int) -> int | None:
    """Agg ITL side (``_agg_decode_scaling``): KV counts queued prefill too."""
    cfg, model = st.cfg, st.models["agg"]
    sens = cfg.load_scaling_down_sensitivity / 100.0
    c = _consolidation(n)
    max_kv = st.caps_decode.max_kv_tokens
    estimates: list[float] = []
    can_down = n > 1 or st.pending("decode") > 0
    refused = False
    for key in sorted(fpms):
        f = fpms[key]
        est = model.scheduled_decode_itl(f)
        if est is not None:
            estimates.append(est * 1000)
        if can_down:
            combined = f.scheduled.sum_decode_kv_tokens + f.queued.sum_decode_kv_tokens + f.queued.sum_prefill_tokens
            if max_kv > 0 and int(combined * c) >= max_kv:
                can_down, refused = False, True
                continue
            post = model.scheduled_decode_itl(f, decode_scale=c, include_queued_prefill_as_kv=True)
            if post is None:
                can_down = False
            elif post * 1000 >= cfg.itl_ms * sens:
                can_down, refused = False, True
    if estimates:
        st.diag.estimated_itl_ms = max(estimates)
    decision = scale_decision(st, estimates, cfg.itl_ms, n, cfg.min_endpoint_for("decode"), can_down)
    if decision is None and refused:
        st.diag.load_decision_reason = REFUSED
        return n
    return decision


def scale_decision(st: ScalingState, estimates: list[float], sla: float, n: int, min_endpoint: int,
                   can_scale_down: bool) -> int | None:
    """``_scale_decision``: up by one when every worker's estimate breaks the SLA; down by one if safe."""
    if not estimates:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    if all(t > sla for t in estimates):
        return n + 1
    if can_scale_down:
        return max(n - 1, min_endpoint)
    st.diag.load_decision_reason = "no_change"
    return None


# ---------------------------------------------------------------------- disaggregated
def _advance_disagg(st: ScalingState, p_stats: FpmMap | None, d_stats: FpmMap | None) -> Decision | None:
    cfg, diag = st.cfg, st.diag
    if not p_stats and not d_stats:
        diag.load_decision_reason = diag.load_decision_reason_prefill = diag.load_decision_reason_decode = \
            "no_fpm_data"
        return None
    blocked = st.load_scaling_blocked("prefill") or st.load_scaling_blocked("decode")
    mismatch = (p_stats and not st.fpm_covers_workers(p_stats, st.num_p)) or \
        (d_stats and not st.fpm_covers_workers(d_stats, st.num_d))
    if blocked or mismatch:
        why = "scaling_in_progress" if blocked else "worker_count_mismatch"
        diag.load_decision_reason = diag.load_decision_reason_prefill = diag.load_decision_reason_decode = why
        return None
    p_reason = d_reason = None
    p_desired = d_desired = None
    if p_stats:
        diag.load_decision_reason = None
        p_desired = _prefill_easy(st, p_stats, st.num_p) if cfg.easy else _prefill_sla(st, p_stats, st.num_p)
        p_reason = diag.load_decision_reason
    if d_stats:
        diag.load_decision_reason = None
        d_desired = _decode_easy(st, d_stats, st.num_d, agg=False) if cfg.easy else \
            _decode_sla(st, d_stats, st.num_d)
        d_reason = diag.load_decision_reason
    if st.pending_p or st.pending_d:
        if p_desired is not None and p_desired > st.num_p:
            p_desired = None
        if d_desired is not None and d_desired > st.num_d:
            d_desired = None
    final_p = p_desired if p_desired is not None else st.num_p
    final_d = d_desired if d_desired is not None else st.num_d
    original_p, original_d = final_p, final_d
    if cfg.enable_throughput_scaling:
        final_p, final_d = max(final_p, st.lower_bound_p), max(final_d, st.lower_bound_d)
    post_p, post_d = final_p, final_d
    final_p = max(final_p, cfg.min_endpoint_for("prefill"))
    final_d = max(final_d, cfg.min_endpoint_for("decode"))
    if st.pending_p or st.pending_d:
        raise NotImplementedError("start-up (pending) workers in a disagg load decision")  # see docs/planner.md
    if cfg.enable_throughput_scaling and (post_p > original_p or post_d > original_d):
        final_p, final_d = st.fit_disagg_ceiling(final_p, final_d)
    final_p, final_d, budget_reason = st.guard_disagg(final_p, final_d)

    def reason(final: int, original: int, post: int, current: int) -> str:
        floor_capped = post > original and original < current
        if final > current:
            return "scale_up"
        if final < current:
            return "scale_down_capped_by_throughput" if floor_capped else "scale_down"
        return "scale_down_capped_by_throughput" if floor_capped else "no_change"

    diag.load_decision_reason_prefill = reason(final_p, original_p, post_p, st.num_p + st.pending_p)
    diag.load_decision_reason_decode = reason(final_d, original_d, post_d, st.num_d + st.pending_d)
    diag.load_decision_reason = max((diag.load_decision_reason_prefill, diag.load_decision_reason_decode),
                                    key=lambda r: REASON_PRIORITY.get(r or "", 0))
    if budget_reason is not None:
        diag.load_decision_reason = budget_reason
    if final_p == st.num_p and final_d == st.num_d:
        # keep the informative sub-decision reasons (e.g. insufficient_data, refused consolidation)
        if p_reason is not None and p_reason != "no_change":
            diag.load_decision_reason_prefill = p_reason
        if d_reason is not None and d_reason != "no_change":
            diag.load_decision_reason_decode = d_reason
        if budget_reason is None:
            for candidate in (p_reason, d_reason):
                if candidate is not None and candidate != "no_change":
                    diag.load_decision_reason = candidate
                    break
        return None
    return Decision(num_prefill=final_p, num_decode=final_d)


def _prefill_sla(st: ScalingState, fpms: FpmMap, n: int) -> int | None:
    """``_prefill_load_decision``: TTFT of a new request; consolidation-aware scale-down."""
    cfg, model = st.cfg, st.models["prefill"]
    if not model.ready or n == 0:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    sens = cfg.load_scaling_down_sensitivity / 100.0
    c = _consolidation(n)
    estimates: list[float] = []
    can_down = n > 1 or st.pending("prefill") > 0
    refused = False
    for key in sorted(fpms):
        f = fpms[key]
        est = model.queued_prefill_time(f, kv_hit_rate=st.last_kv_hit_rate)
        if est is not None:
            estimates.append(est * 1000)
        if can_down:
            t_own = model.queued_prefill_time(f, kv_hit_rate=st.last_kv_hit_rate, queue_scale=0.0)
            if t_own is None:
                can_down = False
                continue
            budget_ms = (cfg.ttft_ms - t_own * 1000) * sens
            if budget_ms <= 0:
                can_down, refused = False, True
                continue
            post = model.queued_prefill_time(f, kv_hit_rate=st.last_kv_hit_rate, queue_scale=c)
            if post is None:
                can_down = False
            elif post * 1000 - t_own * 1000 >= budget_ms:
                can_down, refused = False, True
    if estimates:
        st.diag.estimated_ttft_ms = max(estimates)
    decision = scale_decision(st, estimates, cfg.ttft_ms, n, cfg.min_endpoint_for("prefill"), can_down)
    if decision is None and refused:
        st.diag.load_decision_reason = REFUSED
    return decision


def _decode_sla(st: ScalingState, fpms: FpmMap, n: int) -> int | None:
    """``_decode_load_decision``: ITL of the next pass; scale-down needs KV room and ITL margin."""
    cfg, model = st.cfg, st.models["decode"]
    if not model.ready or n == 0:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    sens = cfg.load_scaling_down_sensitivity / 100.0
    c = _consolidation(n)
    max_kv = st.caps_decode.max_kv_tokens
    estimates: list[float] = []
    can_down = n > 1 or st.pending("decode") > 0
    refused = False
    for key in sorted(fpms):
        f = fpms[key]
        est = model.scheduled_decode_itl(f)
        if est is not None:
            estimates.append(est * 1000)
        if can_down:
            if max_kv > 0 and int((f.scheduled.sum_decode_kv_tokens + f.queued.sum_decode_kv_tokens) * c) >= max_kv:
                can_down, refused = False, True
                continue
            post = model.scheduled_decode_itl(f, decode_scale=c)
            if post is None:
                can_down = False
            elif post * 1000 >= cfg.itl_ms * sens:
                can_down, refused = False, True
    if estimates:
        st.diag.estimated_itl_ms = max(estimates)
    decision = scale_decision(st, estimates, cfg.itl_ms, n, cfg.min_endpoint_for("decode"), can_down)
    if decision is None and refused:
        st.diag.load_decision_reason = REFUSED
    return decision


# ---------------------------------------------------------------------- threshold targets
def _consolidation_safe(desired: int, ready: int, values: list[float], up: float) -> int:
    """Do not drain a worker if its load moved onto the others would trigger a scale-up at once."""
    if 0 < desired < ready and max(values) * ready / desired >= up:
        return ready
    return desired


def _prefill_easy(st: ScalingState, fpms: FpmMap, n: int) -> int | None:
    cfg = st.cfg
    if n == 0:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    target = cfg.optimization_target
    if target == "load":
        up, down = cfg.prefill_scale_up_queue_tokens, cfg.prefill_scale_down_queue_tokens
        if up is None or down is None:
            st.diag.load_decision_reason = "insufficient_data"
            return None
        values = [float(fpms[k].queued.sum_prefill_tokens) for k in sorted(fpms)]
    else:
        ctx = st.caps_prefill.context_length if st.caps_prefill else None
        if not ctx or ctx <= 0:
            st.diag.load_decision_reason = "insufficient_data"  # Dynamo needs max_model_len here
            return None
        up, down = PREFILL_THRESHOLDS[target]
        values = [fpms[k].queued.sum_prefill_tokens / ctx for k in sorted(fpms)]
    if not values:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    if any(v >= up for v in values):
        return n + 1
    if n > 1 or st.pending("prefill"):
        inclusive = target in ("load", "latency")
        if all((v <= down) if inclusive else (v < down) for v in values):
            return _consolidation_safe(max(n - 1, cfg.min_endpoint_for("prefill")), n, values, up)
    st.diag.load_decision_reason = "no_change"
    return None


def _kv_thresholds(st: ScalingState) -> tuple[float, float] | None:
    cfg = st.cfg
    if cfg.optimization_target == "load":
        if cfg.decode_scale_up_kv_rate is None or cfg.decode_scale_down_kv_rate is None:
            return None
        return cfg.decode_scale_up_kv_rate / 100.0, cfg.decode_scale_down_kv_rate / 100.0
    return DECODE_THRESHOLDS[cfg.optimization_target]


def _decode_easy(st: ScalingState, fpms: FpmMap, n: int, *, agg: bool) -> int | None:
    """Decode (and, with queued prefill counted as KV, agg) KV-utilisation thresholds."""
    cfg = st.cfg
    max_kv = st.caps_decode.max_kv_tokens
    th = _kv_thresholds(st)
    if max_kv <= 0 or n == 0 or th is None:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    up, down = th
    is_load = cfg.optimization_target == "load"

    def util(f: Fpm) -> float:
        extra = f.queued.sum_prefill_tokens if agg else 0
        return (f.scheduled.sum_decode_kv_tokens + f.queued.sum_decode_kv_tokens + extra) / max_kv

    utils = [util(fpms[k]) for k in sorted(fpms)]
    if not utils:
        st.diag.load_decision_reason = "insufficient_data"
        return None
    if any((u >= up) if is_load else (u > up) for u in utils):
        return n + 1
    below = all((u <= down) if is_load else (u < down) for u in utils)
    if (n > 1 or st.pending("decode")) and below:
        return _consolidation_safe(max(n - 1, cfg.min_endpoint_for("decode")), n, utils, up)
    st.diag.load_decision_reason = "no_change"
    return None


def _agg_easy(st: ScalingState, fpms: FpmMap, n: int) -> int | None:
    return _decode_easy(st, fpms, n, agg=True)
