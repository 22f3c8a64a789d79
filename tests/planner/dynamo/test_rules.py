"""Unit tests, one per Dynamo planner rule written down in docs/planner.md."""

from __future__ import annotations

import math

import pytest

from llmreplay.planner.dynamo import budget
from llmreplay.planner.dynamo.fpm import Fpm, Queued, Scheduled
from llmreplay.planner.dynamo.load import advance_load, scale_decision
from llmreplay.planner.dynamo.perf_model import EngineLimits, EnginePerfModel, batch_sizes
from llmreplay.planner.dynamo.policy import DynamoPolicy, TickInput, Traffic
from llmreplay.planner.dynamo.predictors import ConstantPredictor, LoadPredict
from llmreplay.planner.dynamo.regression import ForwardPassRegression, Store, features, workload_kind
from llmreplay.planner.dynamo.settings import Capabilities, DynamoSettings
from llmreplay.planner.dynamo.state import ScalingState, WorkerCounts
from llmreplay.planner.dynamo.throughput import advance_throughput


# ---------------------------------------------------------------- regression (AISimulate fpm_regression)
def test_features_are_attention_pairs_and_ffn_tokens() -> None:
    # two prompts of 750 tokens on 1000 tokens of prefix: pairs (T²/2 + T·K)/n
    a, f = features(Scheduled(num_prefill_requests=2, sum_prefill_tokens=1500, sum_prefill_kv_tokens=1000,
                              num_decode_requests=3, sum_decode_kv_tokens=9000))
    assert a == 9000 + (1500 * 1500 / 2 + 1500 * 1000) / 2
    assert f == 1500 + 3


def test_aggregated_passes_are_routed_to_their_workload_store() -> None:
    assert workload_kind(Scheduled(sum_prefill_tokens=10, num_prefill_requests=1)) == "pure_prefill"
    assert workload_kind(Scheduled(num_decode_requests=1, sum_decode_kv_tokens=5)) == "pure_decode"
    assert workload_kind(Scheduled(sum_prefill_tokens=10, num_prefill_requests=1, num_decode_requests=1)) == \
        "contains_locally_mixed"
    assert workload_kind(Scheduled()) is None
    reg = ForwardPassRegression("aggregated")
    for t in (100, 1000, 2000, 4000, 8000):
        reg.tune(Fpm(wall_time=0.001 + t * 1e-5, scheduled=Scheduled(num_prefill_requests=1, sum_prefill_tokens=t)))
    assert reg.ready
    # a mixed pass has no ready store yet: no answer, as in Dynamo (not the prefill store's)
    assert reg.predict_s(Scheduled(num_prefill_requests=1, sum_prefill_tokens=500, num_decode_requests=2,
                                   sum_decode_kv_tokens=100)) is None
    assert reg.predict_s(Scheduled()) == 0.0


def test_store_needs_five_samples_ignores_idle_passes_and_keeps_64() -> None:
    reg = ForwardPassRegression("decode")
    for i in range(4):
        reg.tune(Fpm(wall_time=0.005 + i * 1e-3, scheduled=Scheduled(num_decode_requests=i + 1,
                                                                     sum_decode_kv_tokens=1000 * (i + 1))))
    reg.tune(Fpm(wall_time=0.0, scheduled=Scheduled(num_decode_requests=9, sum_decode_kv_tokens=9)))  # heartbeat
    assert not reg.ready
    for i in range(200):
        reg.tune(Fpm(wall_time=0.005 + i * 1e-5, scheduled=Scheduled(num_decode_requests=1 + i % 50,
                                                                     sum_decode_kv_tokens=500 * (1 + i))))
    assert reg.ready and reg.retained == 64


def test_fit_keeps_slopes_non_negative() -> None:
    s = Store()
    # time falls with batch size: an unconstrained fit would give FFN a negative slope
    for n, kv in ((1, 1000), (2, 3000), (4, 9000), (8, 20000), (16, 50000), (32, 90000)):
        s.add(float(kv), float(n), 0.005 + kv * 1e-7 - n * 1e-4)
    assert s.coef is None and s.ready
    assert s.coef is not None and s.coef[1] >= 0 and s.coef[2] >= 0



def test_a_fit_without_load_signal_keeps_the_previous_fit() -> None:
    """regression.rs ``fit_regression_with_ridge``: once identifiable, a best fit whose slopes are all zero is
    no usable load signal; the compiled model (aisimulate 0.13 in Dynamo 1.6.1) keeps serving the previous fit.
    The numbers are a probe of the compiled model: 20 ms before, 20 ms through the first ten falling samples,
    then 353.5 ms once a positive slope returns."""
    s = Store()
    for i in range(1, 11):
        s.add(i * 5000.0, float(i), 0.01 + 0.001 * i)
    assert s.predict_s(50000, 10) == pytest.approx(0.020, rel=1e-6)
    for i in range(1, 11):  # time falls as the work grows: the best face is intercept-only
        s.add(i * 5000.0, float(i), 0.5 - 0.001 * i)
        assert s.predict_s(50000, 10) == pytest.approx(0.020, rel=1e-6)
    for i in range(11, 16):
        s.add(i * 5000.0, float(i), 0.5 - 0.001 * i)
    assert s.predict_s(50000, 10) == pytest.approx(0.353525, rel=1e-6)
    # a store that never had a load signal has no fit at all (not ready), rather than a flat line
    flat = Store()
    for i in range(1, 10):
        flat.add(i * 1000.0, float(i), 0.02 - 0.0001 * i)
    assert not flat.ready and flat.predict_s(5000, 5) is None

# ---------------------------------------------------------------- engine queries
def _linear_model(role: str) -> EnginePerfModel:
    m = EnginePerfModel(role, EngineLimits(1000, 64, 100_000))
    fpms = [Fpm(wall_time=0.001 * (1 + t / 100), scheduled=Scheduled(num_prefill_requests=1, sum_prefill_tokens=t))
            for t in (100, 200, 400, 600, 1000)]
    m.observe(fpms)
    return m


def test_queued_prefill_drains_in_token_budget_chunks_with_one_average_prompt() -> None:
    m = _linear_model("prefill")
    assert m.avg_isl.value == pytest.approx(460.0)
    f = Fpm(queued=Queued(num_prefill_requests=2, sum_prefill_tokens=2540))
    t = m.queued_prefill_time(f, kv_hit_rate=None)
    # 2540 + 460 = 3000 tokens: three full 1000-token chunks
    one_chunk = m.regression.predict_s(Scheduled(num_prefill_requests=3, sum_prefill_tokens=1000))
    assert one_chunk is not None and t == pytest.approx(3 * one_chunk)
    # a prefix-cache hit rate discounts the work, capped at 95 %
    assert m.queued_prefill_time(f, kv_hit_rate=1.0) < t  # type: ignore[operator]


def test_capacity_sweep_caps_batches_at_128_candidates() -> None:
    assert batch_sizes(5) == [1, 2, 3, 4, 5]
    sizes = batch_sizes(1000)
    assert len(sizes) == 128 and sizes[0] == 1 and sizes[-1] == 1000


# ---------------------------------------------------------------- GPU budget
def test_budget_guard_holds_a_scale_up_at_the_ceiling() -> None:
    assert budget.guard_single(8, 9, 1, -1, 8, 1) == (8, budget.HOLD)
    assert budget.guard_single(6, 9, 1, -1, 8, 1) == (8, None)  # clamped, still up
    assert budget.guard_single(4, 3, 1, -1, 8, 1) == (3, None)
    assert budget.clamp_single(12, 2, -1, 8, 1) == 4
    assert budget.clamp_single(3, 2, -1, 1, 1) == 0  # even one replica overshoots


def test_budget_pair_admits_only_an_opposing_rebalance_at_the_ceiling() -> None:
    assert budget.guard_pair(4, 4, 5, 4, 1, 1, -1, 8, 1, 1) == (4, 4, budget.HOLD)
    assert budget.guard_pair(4, 4, 5, 3, 1, 1, -1, 8, 1, 1) == (5, 3, None)
    assert budget.clamp_pair(6, 6, 1, 1, -1, 8, 1, 1) == (4, 4)


# ---------------------------------------------------------------- load scaling
def _settings(**kw: object) -> DynamoSettings:
    base: dict[str, object] = {"mode": "agg", "optimization_target": "sla", "ttft_ms": 500.0, "itl_ms": 50.0,
                               "enable_load_scaling": True, "enable_throughput_scaling": False}
    base.update(kw)
    return DynamoSettings(**base)  # type: ignore[arg-type]


def test_scale_up_needs_every_worker_over_the_sla() -> None:
    st = ScalingState(_settings(), None, Capabilities())
    assert scale_decision(st, [600.0, 700.0], 500.0, 2, 1, can_scale_down=False) == 3
    assert scale_decision(st, [600.0, 400.0], 500.0, 2, 1, can_scale_down=False) is None
    assert st.diag.load_decision_reason == "no_change"
    assert scale_decision(st, [100.0, 100.0], 500.0, 2, 1, can_scale_down=True) == 1


def _agg_state(n: int, **kw: object) -> tuple[ScalingState, dict[tuple[str, int], Fpm]]:
    st = ScalingState(_settings(**kw), None, Capabilities(max_num_batched_tokens=1000, max_kv_tokens=100_000))
    m = st.models["agg"]
    fpms = []
    for t in (100, 200, 400, 600, 1000):  # mixed passes: 2 decode requests beside a prefill chunk
        fpms.append(Fpm(wall_time=0.01 * (1 + t / 100), scheduled=Scheduled(
            num_prefill_requests=1, sum_prefill_tokens=t, num_decode_requests=2, sum_decode_kv_tokens=2000 + t)))
    for k in (1000, 5000, 10000, 20000, 40000):
        fpms.append(Fpm(wall_time=0.005 + k * 1e-6, scheduled=Scheduled(num_decode_requests=4,
                                                                       sum_decode_kv_tokens=k)))
    m.observe(fpms)
    st.observe_worker_counts(WorkerCounts(ready_num_decode=n, expected_num_decode=n))
    return st, {(str(i), 0): fpms[i % 5] for i in range(n)}


def test_scale_down_refused_when_consolidation_would_break_the_sla() -> None:
    st, obs = _agg_state(2, ttft_ms=130.0, itl_ms=1000.0)
    # 500 queued tokens each: one worker's TTFT is within the SLA, but the survivor of 2 → 1 would queue
    # 1000 tokens plus the new prompt, and that wait exceeds 80 % of what the SLA leaves
    obs = {k: Fpm(wall_time=f.wall_time, scheduled=f.scheduled, queued=Queued(num_prefill_requests=1,
                                                                              sum_prefill_tokens=500))
           for k, f in obs.items()}
    assert advance_load(st, None, obs) is None
    assert st.diag.load_decision_reason == "scale_down_refused_consolidation"


def test_scale_down_when_consolidation_is_safe_and_capped_by_the_throughput_floor() -> None:
    st, obs = _agg_state(3, ttft_ms=5000.0, itl_ms=500.0)
    d = advance_load(st, None, obs)
    assert d is not None and d.num_decode == 2 and st.diag.load_decision_reason == "scale_down"
    st, obs = _agg_state(3, ttft_ms=5000.0, itl_ms=500.0, enable_throughput_scaling=True)
    st.lower_bound_d = 3
    assert advance_load(st, None, obs) is None
    assert st.diag.load_decision_reason == "scale_down_capped_by_throughput"


def test_load_loop_only_observes_while_scaling_is_in_progress() -> None:
    st, obs = _agg_state(2)
    st.observe_worker_counts(WorkerCounts(ready_num_decode=2, expected_num_decode=3))
    assert advance_load(st, None, obs) is None and st.diag.load_decision_reason == "scaling_in_progress"
    st.observe_worker_counts(WorkerCounts(ready_num_decode=3, expected_num_decode=3))
    assert advance_load(st, None, obs) is None and st.diag.load_decision_reason == "worker_count_mismatch"


def test_threshold_target_scales_on_kv_utilisation() -> None:
    st = ScalingState(_settings(optimization_target="throughput"), None, Capabilities(max_kv_tokens=1000))
    st.observe_worker_counts(WorkerCounts(ready_num_decode=1, expected_num_decode=1))
    full = {("0", 0): Fpm(scheduled=Scheduled(num_decode_requests=5, sum_decode_kv_tokens=900),
                          queued=Queued(sum_prefill_tokens=200))}
    d = advance_load(st, None, full)
    assert d is not None and d.num_decode == 2 and st.diag.load_decision_reason == "scale_up"


# ---------------------------------------------------------------- throughput scaling
def test_throughput_sets_the_floor_and_moves_at_most_max_replicas() -> None:
    st, _ = _agg_state(1, enable_throughput_scaling=True, max_throughput_scaling_replicas=2, ttft_ms=5000.0,
                       itl_ms=500.0)
    assert advance_throughput(st, 60.0, 6000.0, 500.0, 100.0, 0.0) is None
    assert st.diag.throughput_decision_reason == "set_lower_bound"
    assert st.lower_bound_d == 3  # wanted far more, capped at current + 2
    assert st.diag.engine_rps_decode is not None and st.diag.engine_rps_decode > 0


# ---------------------------------------------------------------- predictors and scheduling
def test_constant_predictor_skips_the_idle_start_and_keeps_later_zeros() -> None:
    p = ConstantPredictor()
    for v in (0.0, 0.0, 3.0, 0.0):
        p.add(v)
    assert p.buffer == [3.0, 0.0] and p.predict() == 0.0
    lp = LoadPredict("constant")
    lp.observe(10.0, 500.0, 80.0, None)
    lp.observe(0.0, math.nan, math.nan, None)  # an idle window keeps the last request shape
    assert lp.predict() == (0.0, 500.0, 80.0)


def test_ticks_every_scale_interval_with_each_loop_when_due() -> None:
    cfg = _settings(enable_throughput_scaling=True, throughput_interval_s=60.0, load_interval_s=5.0,
                    scale_interval_s=5.0, load_predictor="constant")
    policy = DynamoPolicy(cfg, None, Capabilities())
    sched = policy.initial_tick()
    runs = []
    for _ in range(24):
        runs.append((sched.at_s, sched.run_load_scaling, sched.run_throughput_scaling))
        eff = policy.tick(sched, TickInput(now_s=sched.at_s, traffic=Traffic(60.0, 0.0, 0.0, 0.0)
                                           if sched.need_traffic_metrics else None))
        sched = eff.next_tick
    assert [r[0] for r in runs[:3]] == [5.0, 10.0, 15.0]
    assert all(r[1] for r in runs)
    assert [r[0] for r in runs if r[2]] == [60.0, 120.0]
