"""The rules by which the Dynamo policy observes a closed-loop replay as Dynamo 1.6.1's replay does
(docs/planner.md, "Observation in the replay loop"): each test breaks with its rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.cluster.pool import Pool, PoolSpec
from llmreplay.cluster.router import RouterConfig, make_router
from llmreplay.engine.config import EngineArgs, parse_engine_args
from llmreplay.engine.engine import Engine
from llmreplay.engine.request import Request
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.planner.config import parse_planner_config
from llmreplay.planner.dynamo.replay_adapter import IDLE_HEARTBEAT_S, DynamoPlanner, heartbeat_due
from llmreplay.planner.planner import Planner
from llmreplay.sim.replay import Replay, ReplayOptions

from conftest import FixedStep, LinearStep, make_trace

S = 1_000_000_000


def _pool(name: str, router: str, workers: int = 1) -> Pool:
    pool = Pool(PoolSpec(name, EngineArgs(), LinearStep(), 50_000, 1, 512),
                make_router(router, RouterConfig(), np.random.default_rng(0)), LogHistogram())
    pool.add_workers(workers, 0)
    return pool


# ---------------------------------------------------------------- router
def test_round_robin_resumes_after_the_last_worker_chosen_when_the_fleet_changes() -> None:
    """Dynamo's ``PoolRoundRobinPlacement::place`` keeps ``next = index + 1``: after 26 requests on one worker
    the first request on two goes to the new worker (as in the reference run: request 26 to prefill worker 1),
    and a drained worker's turn passes to the next one."""
    pool = _pool("agg", "round_robin", workers=1)
    router = pool.router
    for _ in range(26):
        router.choose(Request(0, 10, 1, [], 0), pool.routable)
    pool.add_workers(1, 0)
    picks = [router.choose(Request(0, 10, 1, [], 0), pool.routable).id for _ in range(3)]
    assert picks == [1, 0, 1]  # a running counter (26 % 2) would have started at worker 0
    pool.add_workers(1, 0)  # worker 1, at index 1, was chosen last: the new worker 2 is next
    assert [router.choose(Request(0, 10, 1, [], 0), pool.routable).id for _ in range(4)] == [2, 0, 1, 2]
    pool.drain_worker(0)  # worker 2 (index 2) was chosen last, then left: next is index 3 % 2 = 1
    assert [router.choose(Request(0, 10, 1, [], 0), pool.routable).id for _ in range(3)] == [1, 0, 1]


# ---------------------------------------------------------------- FPM queue as of the pass
def test_the_published_queue_is_the_queue_when_the_last_completed_pass_was_scheduled() -> None:
    """The mocker computes a pass's FPM when it schedules it (``execute_pass_internal`` → ``compute_fpm``): a
    request arriving while the pass runs is not in that FPM's queue, nor in the next one's until that next
    pass completes."""
    args = parse_engine_args({"max_num_seqs": 1, "max_num_batched_tokens": 1000}, source="test")
    eng = Engine(0, args, FixedStep(0.010), num_blocks=10_000, hash_block_tokens=16, token_gaps=LogHistogram())
    eng.fpm_queue_snapshots = True
    eng.add(Request(0, 3000, 2, [], 0))
    eng.add(Request(1, 400, 2, [], 0))
    end = eng.plan(0)  # request 0's first chunk; request 1 waits
    assert end is not None
    eng.add(Request(2, 700, 2, [], 0))  # arrives during the pass
    assert eng.view.waiting_queue() == (2, 1100, 0, 0)  # the live queue has it
    assert eng.view.published_queue() == (0, 0, 0, 0)  # no pass has completed yet
    eng.complete(end)
    assert eng.view.published_queue() == (1, 400, 0, 0)  # as scheduled at 0: request 2 not in it
    end = eng.plan(end)
    assert end is not None
    assert eng.view.published_queue() == (1, 400, 0, 0)  # the second pass runs: still the first one's
    eng.complete(end)
    assert eng.view.published_queue() == (2, 1100, 0, 0)


def test_queue_snapshots_are_off_unless_the_dynamo_policy_observes() -> None:
    args = parse_engine_args({}, source="test")
    eng = Engine(0, args, FixedStep(0.010), num_blocks=10_000, hash_block_tokens=16, token_gaps=LogHistogram())
    eng.add(Request(0, 100, 2, [], 0))
    end = eng.plan(0)
    assert end is not None and eng.pending is not None and eng.pending.queue is None
    agg = _pool("agg", "round_robin")
    cfg, _ = parse_planner_config({"policy": "dynamo", "optimization_target": "sla", "load_predictor": "constant",
                                   "enable_throughput_scaling": False})
    DynamoPlanner(cfg, {"agg": agg})
    assert agg.fpm_queue_snapshots and all(w.engine.fpm_queue_snapshots for w in agg.workers)
    assert agg.start_worker(0).engine.fpm_queue_snapshots  # workers started later snapshot too


# ---------------------------------------------------------------- idle heartbeat
def test_the_heartbeat_replaces_a_pass_one_second_after_it_ended() -> None:
    """Dynamo's FPM publisher sends a zeroed snapshot when nothing was published for 1 s
    (``IDLE_HEARTBEAT_INTERVAL``): the reference run shows the last pass up to 0.996 s after it ended and
    the heartbeat from 1.002 s, also while a pass started after the pause still runs."""
    assert IDLE_HEARTBEAT_S == 1.0
    assert not heartbeat_due(10 * S, 0, 10 * S + 999_000_000)
    assert heartbeat_due(10 * S, 0, 11 * S)
    assert not heartbeat_due(None, 5 * S, 5 * S + 500_000_000)  # a new worker: timed from its start
    assert heartbeat_due(None, 5 * S, 6 * S)


# ---------------------------------------------------------------- tick order and traffic
class _Observer:
    def __init__(self) -> None:
        self.arrived_n = 0

    def arrived(self, isl: int, osl: int) -> None:
        self.arrived_n += 1

    def finished(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int, osl: int = 0) -> None:
        pass


def _tick_order_run(ticks_first: bool) -> tuple[list[tuple[int, int]], list[int]]:
    """Two workers; a tick at 1 s drains worker 1 while three requests arrive at 1 s. Returns what the tick
    saw (arrivals counted, requests routed) and each request's worker."""
    trace = make_trace([0.0, 1.0, 1.0, 1.0], [100] * 4, [2] * 4)
    pool = _pool("agg", "round_robin", workers=2)
    replay = Replay(trace, pool, ReplayOptions(ticks_before_arrivals=ticks_first))
    obs = _Observer()
    replay.observer = obs
    seen: list[tuple[int, int]] = []

    def tick(r: Replay, now: int) -> None:
        seen.append((obs.arrived_n, int((r.records.worker >= 0).sum())))
        pool.drain_worker(now)

    replay.at(S, tick)
    res = replay.run()
    return seen, res.records.worker.tolist()


def test_a_dynamo_tick_counts_the_arrivals_of_its_instant_and_acts_before_they_are_routed() -> None:
    """Disagg reference run: the window ending at 60.000 s holds the 166 requests that arrived at ≤ 60.000 s,
    and the 15 requests arriving at 15.000 s all went to the one prefill worker the tick at 15.000 s left."""
    seen, workers = _tick_order_run(ticks_first=True)
    assert seen == [(4, 1)]  # counted all four, routed only the first
    assert workers == [0, 0, 0, 0]
    seen, workers = _tick_order_run(ticks_first=False)  # llmreplay's own planner: arrivals first
    assert seen == [(4, 4)]
    assert workers[1:] == [1, 0, 1]


def test_only_dynamos_disagg_replay_ticks_before_the_arrivals_of_its_instant() -> None:
    """Dynamo's two replay loops order a tick and the arrivals of its instant differently. Reruns of the
    reference set-ups: disagg, a prefill worker added by a tick got arrivals of that instant 7 times of 7 and a
    drained one 0 of 29; agg, an added worker 0 of 35 and a drained one 27 of 29. Ours keeps its own order."""
    cfg, _ = parse_planner_config({"policy": "dynamo", "mode": "disagg", "optimization_target": "sla",
                                   "load_predictor": "constant"})
    assert DynamoPlanner(cfg, {"prefill": _pool("prefill", "round_robin"),
                               "decode": _pool("decode", "kv")}).ticks_before_arrivals
    cfg, _ = parse_planner_config({"policy": "dynamo", "optimization_target": "sla", "load_predictor": "constant"})
    assert not DynamoPlanner(cfg, {"agg": _pool("agg", "round_robin")}).ticks_before_arrivals
    own, _ = parse_planner_config({"policy": "llmreplay", "optimization_target": "sla"})
    assert not Planner(own, {"agg": _pool("agg", "round_robin")}).ticks_before_arrivals


def test_the_prefix_hit_rate_is_zero_unless_requests_enter_by_a_kv_router() -> None:
    """Ours routes disagg decode by KV load whatever the user chose; that is no prefix-cache router, so under
    round robin Dynamo's traffic window has a hit rate of 0 (the reference run's, every window)."""
    cfg, _ = parse_planner_config({"policy": "dynamo", "mode": "disagg", "optimization_target": "sla",
                                   "load_predictor": "constant"})
    rr = DynamoPlanner(cfg, {"prefill": _pool("prefill", "round_robin"), "decode": _pool("decode", "kv")})
    assert not rr.kv_router
    kv = DynamoPlanner(cfg, {"prefill": _pool("prefill", "kv"), "decode": _pool("decode", "kv")})
    assert kv.kv_router


def test_a_dynamo_disagg_run_from_the_cli_routes_arrivals_at_a_tick_after_its_scaling(tmp_path: Path) -> None:
    """From the command a user types: two idle prefill workers, the tick at 5 s scales prefill down to one, and
    the four requests arriving at 5.000 s all go to the worker left (Dynamo's order; arrivals first would
    alternate them over both)."""
    lines = [{"timestamp": t, "input_length": 2000, "output_length": 4, "hash_ids": [i * 10 + k for k in range(4)]}
             for i, t in enumerate([0, 0, 2000, 5000, 5000, 5000, 5000])]
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out, requests = tmp_path / "r.json", tmp_path / "req.jsonl"
    planner: dict[str, Any] = {"policy": "dynamo", "mode": "disagg", "optimization_target": "sla", "ttft": 2500,
                               "itl": 50, "load_predictor": "constant", "enable_throughput_scaling": False,
                               "enable_load_scaling": True, "load_adjustment_interval": 5,
                               "pre_deployment_sweeping_mode": "rapid"}
    res = CliRunner().invoke(app, ["run", str(trace), "--num-prefill-workers", "2", "--num-decode-workers", "1",
                                   "--router", "round_robin", "--planner-config", json.dumps(planner),
                                   "--report-json", str(out), "--requests-out", str(requests), "--quiet",
                                   "--no-progress", "--no-baselines"])
    assert res.exit_code == 0, res.output
    events = json.loads(out.read_text())["planner"]["events"]
    assert [(e["t_s"], e["component"], e["to"]) for e in events] == [(5.0, "prefill", 1)]
    rows = [json.loads(line) for line in requests.read_text().splitlines()]
    assert [r["prefill_worker"] for r in rows if r["arrival_ms"] == 5000.0] == [0, 0, 0, 0]
    assert {r["prefill_worker"] for r in rows if r["arrival_ms"] < 5000.0} == {0, 1}


# ---------------------------------------------------------------- mocker alignment (engine args)
def test_prefix_cache_on_schedule_from_the_cli(tmp_path: Path) -> None:
    """The engine arg that aligns our prefix cache with Dynamo's mocker: in the reference run a new worker's
    second request reuses the 512-token prefix of the first, scheduled in the same pass; ours does so with
    ``prefix_cache_on_schedule`` and not without (the default reuses computed blocks only)."""
    lines = [{"timestamp": 0, "input_length": 1500, "output_length": 2, "hash_ids": [7, 8 + i, 20 + i]}
             for i in range(2)]
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(json.dumps(x) for x in lines) + "\n")

    def cached(engine: dict[str, Any]) -> list[int]:
        out = tmp_path / "req.jsonl"
        res = CliRunner().invoke(app, ["run", str(trace), "--num-workers", "1", "--extra-engine-args",
                                       json.dumps(engine), "--requests-out", str(out), "--quiet", "--no-progress",
                                       "--no-baselines"])
        assert res.exit_code == 0, res.output
        return [json.loads(line)["cached_tokens"] for line in out.read_text().splitlines()]

    assert cached({}) == [0, 0]
    assert cached({"prefix_cache_on_schedule": True}) == [0, 512]


def test_evict_prompt_head_first_from_the_cli(tmp_path: Path) -> None:
    """The engine arg that aligns eviction with Dynamo 1.6.1's mocker: a 3-block prompt is freed, one of its
    blocks must go for another prompt, and a later prompt sharing all three reuses the two left when the tail
    went first (ours, vLLM) and nothing when the head went first (the mocker: its reference run reused 512
    tokens of an idle 24k prefix where tail-first kept 13,824)."""
    lines = [{"timestamp": 0, "input_length": 1536, "output_length": 1, "hash_ids": [1, 2, 3]},
             {"timestamp": 1000, "input_length": 1024, "output_length": 1, "hash_ids": [10, 11]},
             {"timestamp": 2000, "input_length": 2048, "output_length": 1, "hash_ids": [1, 2, 3, 4]}]
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(json.dumps(x) for x in lines) + "\n")

    def cached(engine: dict[str, Any]) -> list[int]:
        out = tmp_path / "req.jsonl"
        res = CliRunner().invoke(app, ["run", str(trace), "--num-workers", "1", "--extra-engine-args",
                                       json.dumps({"num_gpu_blocks": 128, **engine}), "--requests-out", str(out),
                                       "--quiet", "--no-progress", "--no-baselines"])
        assert res.exit_code == 0, res.output
        return [json.loads(line)["cached_tokens"] for line in out.read_text().splitlines()]

    assert cached({}) == [0, 0, 1024]
    assert cached({"evict_prompt_head_first": True}) == [0, 0, 0]
