"""The traffic window Dynamo's planner reads on a throughput tick, as Dynamo 1.6.1's replay builds it
(``planner/dynamo/traffic.py``; docs/planner.md, "In the replay loop"). Each test breaks with its rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.cluster.pool import Pool, PoolSpec
from llmreplay.cluster.router import RouterConfig, make_router
from llmreplay.engine.config import EngineArgs
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.planner.config import parse_planner_config
from llmreplay.planner.dynamo.replay_adapter import DynamoPlanner
from llmreplay.planner.dynamo.traffic import TrafficWindow
from llmreplay.sim.replay import Replay, ReplayOptions
from llmreplay.trace.model import Trace

from conftest import FixedStep, make_trace


def test_traffic_window_counts_arrivals_and_averages_the_completed() -> None:
    """``num_req`` = requests that arrived; ISL and OSL = means over the requests that completed (the mocker's
    ``TrafficAccumulator``, merged per throughput interval by ``shape_count`` in ``_merge_traffic``)."""
    w = TrafficWindow()
    for _ in range(3):
        w.arrived()
    w.finished(1000, 10)
    w.finished(3000, 30)
    t = w.traffic(60.0, 0.0)
    assert t is not None
    assert (t.num_req, t.isl, t.osl, t.duration_s) == (3.0, 2000.0, 20.0, 60.0)
    empty = TrafficWindow()
    empty.arrived()
    t0 = empty.traffic(60.0, 0.0)
    assert t0 is not None and (t0.num_req, t0.isl, t0.osl) == (1.0, 0.0, 0.0)  # nothing completed: 0, as drain
    assert TrafficWindow().traffic(0.0, 0.0) is None  # an empty span: no traffic observation


def _observe(trace: Trace, cfg: dict[str, Any], step_s: float = 0.010) -> list[Any]:
    """Run the Dynamo policy over ``trace`` on one worker and return each tick's input."""
    pool = Pool(PoolSpec("agg", EngineArgs(), FixedStep(step_s), 50_000, 1, 512),
                make_router("round_robin", RouterConfig(), np.random.default_rng(0)), LogHistogram())
    pool.add_workers(1, 0)
    planner_cfg, _ = parse_planner_config({"policy": "dynamo", "optimization_target": "sla", "ttft": 2500,
                                           "itl": 50, "enable_load_scaling": True, "max_gpu_budget": 1,
                                           "pre_deployment_sweeping_mode": "none", **cfg})
    planner = DynamoPlanner(planner_cfg, {"agg": pool})
    seen: list[Any] = []
    orig = planner.policy.tick

    def tick(sched: Any, inp: Any) -> Any:
        seen.append(inp)
        return orig(sched, inp)

    planner.policy.tick = tick  # type: ignore[method-assign]
    replay = Replay(trace, pool, ReplayOptions(collapse_idle_ticks=False,
                                               ticks_before_arrivals=planner.ticks_before_arrivals))
    replay.observer = planner
    replay.every(planner.period_ns, lambda r, t: planner.tick(t, r.start_worker))
    replay.run()
    return seen


def test_the_window_holds_arrivals_and_completions_up_to_and_at_its_tick() -> None:
    """A window is (previous tick, tick]: requests that arrive exactly at a tick count in the window it ends
    (Dynamo settles same-timestamp work before a tick); ISL/OSL average the requests that completed in it."""
    # two at 0 s (finish within a second), one at exactly 10 s (a throughput tick), one at 12 s, one at 25 s
    tr = make_trace([0.0, 0.0, 10.0, 12.0, 25.0], [100, 300, 500, 700, 100], [5, 15, 5, 5, 5])
    seen = _observe(tr, {"enable_throughput_scaling": True, "throughput_adjustment_interval": 10,
                         "load_adjustment_interval": 5, "load_predictor": "constant"})
    traffic = [(inp.now_s, inp.traffic) for inp in seen if inp.traffic is not None]
    assert [t for t, _ in traffic][:2] == [10.0, 20.0]
    first, second = traffic[0][1], traffic[1][1]
    assert (first.num_req, first.isl, first.osl) == (3.0, 200.0, 10.0)  # the 10-s arrival is in; it runs later
    assert (second.num_req, second.isl, second.osl) == (1.0, 600.0, 5.0)


def test_the_traffic_window_from_the_command_line(tmp_path: Path) -> None:
    """From the command a user types, with the constant load predictor (it forecasts the last window): the
    window ending at 10 s holds 3 arrivals (one exactly at 10 s), and ISL/OSL are the means of the 2 requests
    that completed in it (the one offered at 10 s completes later and does not count)."""
    lines = [{"timestamp": t, "input_length": i, "output_length": o}
             for t, i, o in [(0, 100, 5), (0, 300, 15), (10_000, 500, 50), (25_000, 100, 5)]]
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "r.json"
    cfg = {"policy": "dynamo", "optimization_target": "sla", "ttft": 2500, "itl": 50, "load_predictor": "constant",
           "enable_throughput_scaling": True, "throughput_adjustment_interval": 10, "enable_load_scaling": True,
           "load_adjustment_interval": 5, "pre_deployment_sweeping_mode": "none"}
    res = CliRunner().invoke(app, ["run", str(trace), "--num-workers", "1", "--router", "round_robin",
                                   "--planner-config", json.dumps(cfg), "--report-json", str(out), "--quiet",
                                   "--no-progress", "--no-baselines"])
    assert res.exit_code == 0, res.output
    ticks = {t["t_s"]: t for t in json.loads(out.read_text())["planner"]["ticks"]}
    assert ticks[10.0]["predicted_rps"] == 0.3
    assert (ticks[10.0]["predicted_isl"], ticks[10.0]["predicted_osl"]) == (200.0, 10.0)
