"""Does the planner earn its keep? Baselines computed by replay for every planner run.

* best fixed fleet: the cheapest fixed fleet reaching the planner's attainment, and the one reaching the SLA
  goal (:mod:`.fixed`);
* hindsight schedule: the cheapest per-interval schedule meeting the goal within the planner's own change
  budget, knowing the whole trace, verified by replay (:mod:`.hindsight`);
* regret: the planner's GPU-hours and attainment minus each baseline's.

The block is a plain dict (``report["baselines"]``) so the report stays JSON; ``llmreplay run`` adds it to
planner runs unless ``--no-baselines``; sweeps, recommend and benchmarks call ``runner.run`` and never pay it.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmreplay.errors import InputError

if TYPE_CHECKING:  # imported when baselines are computed: `llmreplay run` should not pay for the sweep machinery
    from llmreplay.baselines.fixed import FixedFleet
    from llmreplay.baselines.fleet import FleetRunner
    from llmreplay.config import RunConfig
    from llmreplay.trace.model import Trace

DEFAULT_GOAL = 0.9
#: hindsight interval: about 30 per run, between 10 s and a minute
INTERVAL_MIN_S, INTERVAL_MAX_S, INTERVALS = 10.0, 60.0, 30


@dataclass(frozen=True)
class BaselineOptions:
    goal: float = DEFAULT_GOAL
    change_budget: int | None = None  # None: the planner's own number of changes
    executor: str = "local"  # the sweep executors: a local process pool, or Ray
    jobs: int | None = None  # None: one per CPU
    address: str | None = None  # Ray: a running cluster (``auto``, ``ray://host:10001``); None: a local instance

    def check(self) -> None:
        if not 0 < self.goal <= 1:
            raise InputError(f"--baselines-goal must be a share of requests in (0, 1] (got {self.goal}).")
        if self.address is not None and self.executor != "ray":
            raise InputError(f"--baselines-address is for --baselines-executor ray (got --baselines-executor "
                             f"{self.executor} with --baselines-address {self.address}).")
        if self.executor == "local" and self.jobs is not None:
            self._check_local_jobs(self.jobs)
        if self.change_budget is not None and self.change_budget < 0:
            raise InputError(f"the hindsight change budget must be >= 0 (got {self.change_budget}).")

    @staticmethod
    def _check_local_jobs(jobs: int) -> None:
        from llmreplay.sweep.executors import max_local_jobs

        if jobs > max_local_jobs():
            raise InputError(f"--baselines-jobs {jobs:,} would start that many processes on this machine; at "
                             f"most {max_local_jobs():,} with --baselines-executor local (or use ray).")


def compute_baselines(cfg: RunConfig, trace: Trace, report: dict[str, Any],
                      options: BaselineOptions | None = None) -> dict[str, Any]:
    """The ``baselines`` block of a planner run's report (``trace``: the run's shaped trace)."""
    from llmreplay.sweep.executors import ray_session

    options = options or BaselineOptions()
    options.check()
    t0 = time.perf_counter()
    jobs = options.jobs or os.cpu_count() or 1
    # Ray starts once for all the searches' batches, not once a batch
    with ray_session(jobs, options.address) if options.executor == "ray" else contextlib.nullcontext():
        return _compute(cfg, trace, report, options, jobs, t0)


def _compute(cfg: RunConfig, trace: Trace, report: dict[str, Any], options: BaselineOptions, jobs: int,
             t0: float) -> dict[str, Any]:
    from llmreplay.baselines.fixed import best_fixed
    from llmreplay.baselines.fleet import FleetRunner
    from llmreplay.baselines.hindsight import build

    runner = FleetRunner(cfg, trace, report, executor=options.executor, jobs=jobs, address=options.address)
    planner = _planner_point(report)
    horizon_s = float(report["sim"]["simulated_s"])
    mean = [max(1, round(p["gpu_hours"] * 3600 / max(horizon_s, 1e-9) / p["gpus_per_worker"]))
            for p in report["pools"].values()]
    at_planner, at_goal = best_fixed(runner, [planner["attainment"], options.goal], tuple(mean), jobs)
    budget = planner["replica_changes"] if options.change_budget is None else options.change_budget
    hindsight: dict[str, Any] | None = None
    if at_goal is not None:
        interval = min(INTERVAL_MAX_S, max(INTERVAL_MIN_S, horizon_s / INTERVALS))
        startup = max(float(_engine_args(report, name).get("startup_time") or 0.0) for name in runner.components)
        hindsight = build(runner, options.goal, at_goal.counts, budget, interval, startup).to_dict(runner)
    best = {"at_planner_attainment": _fixed_dict(runner, at_planner, planner["attainment"]),
            "at_goal": _fixed_dict(runner, at_goal, options.goal)}
    regret = {name: _regret(planner, b) for name, b in
              (("best_fixed_at_planner_attainment", best["at_planner_attainment"]),
               ("best_fixed_at_goal", best["at_goal"]), ("hindsight", hindsight))}
    return {
        "goal": options.goal,
        "planner": planner,
        "best_fixed": best,
        "hindsight": hindsight,
        "regret": regret,
        "fixed_runs": sorted(({**runner.describe(f), "attainment": r.attainment, "gpu_hours": r.gpu_hours}
                              for f, r in runner.cache.items() if runner.is_fixed(f)),
                             key=lambda d: d["gpu_hours"]),
        "replays": runner.replays,
        "wall_s": time.perf_counter() - t0,
    }


def _planner_point(report: dict[str, Any]) -> dict[str, Any]:
    att = report["sla"]["attainment"]
    if att is None:
        raise InputError("baselines need an SLA to judge requests by: give --sla-ttft-ms / --sla-itl-ms or "
                         "planner ttft / itl targets, or pass --no-baselines.")
    return {"attainment": float(att), "gpu_hours": float(report["cost"]["gpu_hours"]),
            "replica_changes": int(report["cost"]["replica_transitions"])}


def _engine_args(report: dict[str, Any], pool: str) -> dict[str, Any]:
    key = "extra_engine_args" if pool == "agg" else f"{pool}_engine_args"
    return dict(report["config"].get(key) or {})


def _fixed_dict(runner: FleetRunner, fleet: FixedFleet | None, target: float) -> dict[str, Any]:
    if fleet is None:
        return {"target": target, "reached": False, "workers": None, "attainment": None, "gpu_hours": None}
    return {"target": target, "reached": True, **runner.describe(fleet.counts),
            "attainment": fleet.result.attainment, "gpu_hours": fleet.result.gpu_hours}


def _regret(planner: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, float] | None:
    if baseline is None or baseline.get("gpu_hours") is None:
        return None
    return {"gpu_hours": planner["gpu_hours"] - baseline["gpu_hours"],
            "attainment": planner["attainment"] - baseline["attainment"]}


def console_lines(block: dict[str, Any]) -> list[str]:
    """What ``llmreplay run`` prints under the metrics table."""

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f} %"

    def fleet(b: dict[str, Any]) -> str:
        if not b["reached"]:
            return f"no fixed fleet reaches {pct(b['target'])}"
        workers = ", ".join(f"{n} {c}" for c, n in b["workers"].items())
        return f"{workers} worker(s): {b['gpu_hours']:.2f} GPU-h, {pct(b['attainment'])}"

    def regret(r: dict[str, float] | None) -> str:
        return "" if r is None else f"  (planner {r['gpu_hours']:+.2f} GPU-h, {100 * r['attainment']:+.1f} pts)"

    p, best, reg = block["planner"], block["best_fixed"], block["regret"]
    lines = [f"Baselines ({block['replays']} replays, {block['wall_s']:.1f} s wall; --no-baselines skips them)",
             f"  planner: {p['gpu_hours']:.2f} GPU-h, {pct(p['attainment'])}, {p['replica_changes']} changes",
             f"  best fixed fleet reaching the planner's {pct(p['attainment'])}: {fleet(best['at_planner_attainment'])}"
             + regret(reg["best_fixed_at_planner_attainment"]),
             f"  best fixed fleet reaching the goal {pct(block['goal'])}: {fleet(best['at_goal'])}"
             + regret(reg["best_fixed_at_goal"])]
    h = block["hindsight"]
    if h is None:
        lines.append("  hindsight schedule: none (no fixed fleet reaches the goal)")
    else:
        lines.append(f"  hindsight schedule (≤ {h['change_budget']} changes, verified): {h['gpu_hours']:.2f} GPU-h, "
                     f"{pct(h['attainment'])}, {h['replica_changes']} changes, goal "
                     f"{'met' if h['met'] else 'NOT met'}" + regret(reg["hindsight"]))
    return lines
