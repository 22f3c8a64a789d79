"""Replays of alternative fleets for one planner run: fixed counts, or a scripted schedule.

Every baseline is a replay of the planner run's own trace (already sliced, sped up and jittered) with the
same engines, router, seed and SLA, only the fleet changed. Replays run in batches on the sweep executors
(a local process pool or Ray) and are cached by fleet, so the searches and the hindsight schedule share them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, TypeGuard

from llmreplay.config import RunConfig
from llmreplay.sweep.executors import PointTask, make_executor, trace_key
from llmreplay.trace.model import Trace

#: a fleet: replicas per component, in component order (agg: ``(n,)``; disagg: ``(prefill, decode)``)
Counts = tuple[int, ...]
#: a schedule: (t_s, replicas per component) rows, the first at t=0
Schedule = tuple[tuple[float, Counts], ...]


@dataclass(frozen=True)
class FleetResult:
    """What a baseline needs of one replay: the totals, and good / sent requests per arrival bin."""

    attainment: float
    gpu_hours: float
    replica_changes: int
    bin_s: float
    good: tuple[int, ...]
    sent: tuple[int, ...]

    @classmethod
    def from_report(cls, report: dict[str, Any], gpu_scale: dict[str, float]) -> FleetResult:
        ts = report["timeseries"]
        sent = [int(x) for x in ts["arrivals"]]
        att = ts["sla_attainment"] or [None] * len(sent)
        good = [round((a or 0.0) * n) for a, n in zip(att, sent, strict=True)]
        # GPU-hours as if each worker had the planner run's GPUs per worker
        gpu_hours = sum(p["gpu_hours"] * gpu_scale.get(name, 1.0) for name, p in report["pools"].items())
        return cls(float(report["sla"]["attainment"] or 0.0), gpu_hours, int(report["cost"]["replica_transitions"]),
                   float(ts["bin_s"]), tuple(good), tuple(sent))


class FleetRunner:
    """Runs fleets of one topology against the planner run's trace; remembers every result."""

    def __init__(self, cfg: RunConfig, trace: Trace, report: dict[str, Any], *, executor: str = "local",
                 jobs: int = 1, address: str | None = None) -> None:
        self.components: tuple[str, ...] = tuple(report["pools"])
        self.disagg = "prefill" in self.components
        sla = report["sla"]
        # the planner run's trace is already shaped: the replays take it as it is
        self.base = cfg.model_copy(update={
            "planner_config": None, "start": None, "duration": None, "max_requests": None,
            "arrival_speedup_ratio": 1.0, "arrival_jitter": None, "report_json": None, "report_html": None,
            "requests_out": None, "sla_ttft_ms": sla["ttft_ms"], "sla_itl_ms": sla["itl_ms"],
            "sla_e2e_ms": sla["e2e_ms"], "trace": cfg.trace or "<planner run trace>",
        })
        self.trace = trace
        self.gpus = {name: int(p["gpus_per_worker"]) for name, p in report["pools"].items()}
        self.executor = make_executor(executor, jobs, address)
        self.cache: dict[Counts | Schedule, FleetResult] = {}
        self.replays = 0
        self.wall_s = 0.0

    def gpus_of(self, counts: Counts) -> int:
        return sum(n * self.gpus[c] for n, c in zip(counts, self.components, strict=True))

    def describe(self, counts: Counts) -> dict[str, Any]:
        return {"workers": dict(zip(self.components, counts, strict=True))}

    @staticmethod
    def is_fixed(key: Counts | Schedule) -> TypeGuard[Counts]:
        return all(isinstance(x, int) for x in key)

    def fixed(self, fleets: Sequence[Counts]) -> dict[Counts, FleetResult]:
        """Replay each fixed fleet not replayed yet; return the results of all of them."""
        self._run([(f, self._fixed_cfg(f)) for f in dict.fromkeys(fleets) if f not in self.cache])
        return {f: self.cache[f] for f in fleets}

    def scripted(self, schedule: Schedule) -> FleetResult:
        if schedule not in self.cache:
            self._run([(schedule, self._scripted_cfg(schedule))])
        return self.cache[schedule]

    def schedule_rows(self, schedule: Schedule) -> list[dict[str, Any]]:
        """The rows ``policy: scripted`` reads: one per component whose count changes (all of them at t=0)."""
        rows: list[dict[str, Any]] = []
        prev: Counts | None = None
        for t_s, counts in schedule:
            for k, (name, n) in enumerate(zip(self.components, counts, strict=True)):
                if prev is None or prev[k] != n:
                    rows.append({"t_s": round(t_s, 6), "component": name, "replicas": n})
            prev = counts
        return rows

    # ----------------------------------------------------------------- internals
    def _fixed_cfg(self, counts: Counts) -> RunConfig:
        if self.disagg:
            return self.base.model_copy(update={"num_prefill_workers": counts[0], "num_decode_workers": counts[1]})
        return self.base.model_copy(update={"num_workers": counts[0]})

    def _scripted_cfg(self, schedule: Schedule) -> RunConfig:
        cfg = self._fixed_cfg(schedule[0][1])  # the first counts are warm at t=0, as a fixed fleet's are
        rows = [r for r in self.schedule_rows(schedule) if r["t_s"] > 0]
        if not rows:
            return cfg
        return cfg.model_copy(update={"planner_config": {"policy": "scripted", "schedule": rows}})

    def _run(self, todo: list[tuple[Counts | Schedule, RunConfig]]) -> None:
        if not todo:
            return
        t0 = time.perf_counter()
        tasks = [PointTask(i, str(i), cfg) for i, (_, cfg) in enumerate(todo)]
        traces = {trace_key(self.base): self.trace}
        scale = {name: g for name, g in self.gpus.items()}
        with closing(self.executor(tasks, traces)) as results:
            for res in results:
                key = todo[res.index][0]
                if res.status != "ok" or res.report_json is None:
                    raise RuntimeError(f"baseline replay {key} failed: {res.error}")
                report = json.loads(res.report_json)
                own = {name: p["gpus_per_worker"] for name, p in report["pools"].items()}
                self.cache[key] = FleetResult.from_report(report, {n: scale[n] / own[n] for n in own})
        self.replays += len(todo)
        self.wall_s += time.perf_counter() - t0
