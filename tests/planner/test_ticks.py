"""The tick state machine: order, floor, precedence, budget, lifecycle — each rule has a test that breaks with it."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmreplay.cluster.pool import Pool, PoolSpec
from llmreplay.cluster.router import RouterConfig, make_router
from llmreplay.cluster.worker import State
from llmreplay.engine.config import EngineArgs
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.planner.config import parse_planner_config
from llmreplay.planner.observe import TrafficWindow
from llmreplay.planner.planner import Planner, TickDiagnostics, aggregate_reason
from llmreplay.sim.replay import Replay, ReplayOptions

from conftest import LinearStep, make_trace


def make(cfg: dict[str, Any], workers: int = 2, **engine: Any) -> tuple[Planner, Pool]:
    args = EngineArgs.model_validate(engine)
    pool = Pool(PoolSpec("agg", args, LinearStep(), 50_000, 1, 512),
                make_router("round_robin", RouterConfig(), np.random.default_rng(0)), LogHistogram())
    pool.add_workers(workers, 0)
    planner_cfg, _ = parse_planner_config({"optimization_target": "sla", "enable_load_scaling": True, **cfg})
    return Planner(planner_cfg, {"agg": pool}), pool


def start(pool: Pool, now: int) -> None:
    pool.activate(pool.start_worker(now), now)


def test_a_load_scale_down_stopped_by_the_floor_reports_capped_by_throughput() -> None:
    planner, _pool = make({})
    c = planner.components[0]
    c.floor = 4
    d = TickDiagnostics(t_s=5)
    d.reason_load_decode = "scale_down"
    planner._apply(c, 1, 5, d, start)
    assert c.current() == 4  # the floor wins over the load decision
    assert d.reason_load_decode == "scale_down_capped_by_throughput"


def test_a_scale_down_stopped_by_min_endpoint_is_not_blamed_on_throughput() -> None:
    planner, _pool = make({"min_endpoint": 2})
    c = planner.components[0]
    c.floor = 1
    d = TickDiagnostics(t_s=5)
    d.reason_load_decode = "scale_down"
    planner._apply(c, 1, 5, d, start)
    assert c.current() == 2 and d.reason_load_decode == "no_change"


def test_no_change_still_rises_to_a_newly_raised_floor() -> None:
    planner, _pool = make({})
    c = planner.components[0]
    c.floor = 5
    d = TickDiagnostics(t_s=5)
    d.reason_load_decode = "no_change"
    planner._apply(c, None, 5, d, start)
    assert c.current() == 5
    assert planner.events[-1].to == 5 and planner.events[-1].reason == "scale_up"


def test_gpu_budget_caps_and_says_so() -> None:
    planner, _pool = make({"max_gpu_budget": 3})
    c = planner.components[0]
    d = TickDiagnostics(t_s=5)
    planner._apply(c, 6, 5, d, start)
    assert c.current() == 3
    assert d.reason_load_decode == "capped_by_gpu_budget"
    assert planner.warnings and "max_gpu_budget" in planner.warnings[0]


def test_combined_tick_runs_throughput_first_so_load_sees_the_new_floor() -> None:
    # both loops due at t = 10 s; heavy traffic raises the floor, idle engines would scale down
    planner, _pool = make({"load_adjustment_interval": 5, "throughput_adjustment_interval": 10}, workers=2)
    c = planner.components[0]
    for _ in range(2000):  # 200 req/s of ~1k-token prompts observed in the throughput window
        planner.arrived(1000, 200)
    planner.tick(10 * 10**9, start)
    tick = planner.ticks[-1]
    assert tick.reason_throughput == "set_lower_bound"
    assert tick.floor_decode is not None and tick.floor_decode > 2
    assert tick.replicas_decode == tick.floor_decode == c.current()


def test_aggregate_reason_priority() -> None:
    assert aggregate_reason(["scale_down", "scale_up"]) == "scale_up"
    assert aggregate_reason(["scale_down", "scale_down_capped_by_throughput"]) == "scale_down_capped_by_throughput"
    assert aggregate_reason(["no_change", "scale_down"]) == "scale_down"
    assert aggregate_reason([None, "no_fpm_data"]) == "no_fpm_data"
    assert aggregate_reason([None, None]) is None


def test_traffic_window_counts_zero_latency_requests() -> None:
    w = TrafficWindow()
    w.arrive(100, 10)
    w.finish(0.0, 0.0, 100, 100)  # a full cache hit with zero latency still reports its zeros
    assert w.ttft_samples == 1 and w.mean_ttft_ms == 0.0 and w.mean_itl_ms == 0.0


def test_scale_up_serves_after_startup_time_and_is_billed_from_the_request() -> None:
    n = 3000  # a minute of heavy traffic, a 2-minute lull, then two last requests
    tr = make_trace([*np.linspace(0, 60, n).tolist(), 180.0, 181.0], [2000] * (n + 2), [100] * (n + 2))
    args = EngineArgs(startup_time=20.0)
    pool = Pool(PoolSpec("agg", args, LinearStep(), 50_000, 1, 512),
                make_router("round_robin", RouterConfig(), np.random.default_rng(0)), LogHistogram())
    pool.add_workers(1, 0)
    cfg, _ = parse_planner_config({"optimization_target": "sla", "enable_load_scaling": True,
                                   "enable_throughput_scaling": False, "ttft": 200, "load_adjustment_interval": 5})
    planner = Planner(cfg, {"agg": pool})
    replay = Replay(tr, pool, ReplayOptions())
    replay.observer = planner
    replay.every(planner.period_ns, lambda r, t: planner.tick(t, r.start_worker))
    res = replay.run()
    assert planner.events and planner.events[0].reason == "scale_up"
    first = pool.workers[1]
    assert first.created_ns == int(planner.events[0].t_s * 1e9)
    # routable only after 20 s: no request reached it before then
    served = res.records.arrival_ns[res.records.worker == 1]
    assert served.min() >= first.created_ns + 20 * 10**9
    # billed from creation: provisioned count rose at creation time, active count 20 s later
    assert (first.created_ns, 2) in pool.provision_log
    assert (first.created_ns + 20 * 10**9, 2) in pool.active_log
    # after the traffic ends, the planner drains back down and drained workers stop
    assert any(e.reason == "scale_down" for e in planner.events)
    assert any(w.state == State.STOPPED for w in pool.workers)
    assert (res.records.status == 1).all()


def make_disagg(cfg: dict[str, Any]) -> Planner:
    pools = {}
    for role in ("prefill", "decode"):
        pool = Pool(PoolSpec(role, EngineArgs(), LinearStep(), 50_000, 1, 512, kv_bytes_per_token=131072),
                    make_router("round_robin", RouterConfig(), np.random.default_rng(0)), LogHistogram())
        pool.add_workers(1, 0)
        pools[role] = pool
    planner_cfg, _ = parse_planner_config({"optimization_target": "sla", "mode": "disagg", **cfg})
    return Planner(planner_cfg, pools)


def test_disagg_side_without_a_fitted_regression_makes_the_other_partner_not_ready() -> None:
    planner = make_disagg({"throughput_adjustment_interval": 10})
    prefill, decode = planner.components
    assert prefill.regression.ready and decode.regression.ready  # bootstrapped from the perf model
    decode.regression.coef = None  # as if the decode fit had never succeeded
    for _ in range(100):
        planner.arrived(2000, 200)
    planner.tick(10 * 10**9, start)
    t = planner.ticks[-1]
    assert t.reason_throughput_prefill == "partner_not_ready"
    assert t.reason_throughput_decode == "model_not_ready"
    assert prefill.floor == 0 and decode.floor == 0  # neither side is sized alone


def test_disagg_throughput_sizes_both_sides() -> None:
    planner = make_disagg({"throughput_adjustment_interval": 10, "max_gpu_budget": -1})
    for _ in range(500):  # 50 req/s of 4k-token prompts
        planner.arrived(4000, 300)
    planner.tick(10 * 10**9, start)
    t = planner.ticks[-1]
    assert t.reason_throughput == "scale"
    assert t.engine_rps_prefill is not None and t.engine_rps_decode is not None
    assert t.replicas_prefill == t.floor_prefill and t.floor_prefill >= 2  # type: ignore[operator]
    assert t.replicas_decode == t.floor_decode
    assert {e.component for e in planner.events} <= {"prefill", "decode"}
