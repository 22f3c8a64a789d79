"""Pick the planner of a run by ``planner_config.policy``."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from llmreplay.cluster.pool import Pool
from llmreplay.planner.config import PlannerConfig
from llmreplay.planner.planner import Planner, ScalingEvent


class PlannerLike(Protocol):
    """What the replay loop and the report need of a planner, whichever policy decides."""

    cfg: PlannerConfig
    events: list[ScalingEvent]
    warnings: list[str]
    period_ns: int
    wall_s: float
    #: its tick runs before the trace arrivals of the same instant (ReplayOptions.ticks_before_arrivals)
    ticks_before_arrivals: bool

    def arrived(self, isl: int, osl: int) -> None: ...

    def finished(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int, osl: int = 0) -> None: ...

    def tick(self, now: int, start_worker: Any, handoffs_waiting: int = 0) -> None: ...

    def report(self) -> dict[str, Any]: ...

    def ticks_one_by_one(self) -> str | None: ...

    # its idle ticks may be collapsed (llmreplay.sim.idle.Collapsible)
    @property
    def cycle_ticks(self) -> int: ...

    def idle_fingerprint(self, now: int) -> Hashable | None: ...

    def collapse(self, cycles: int, cycle_ticks: int, period_ns: int) -> None: ...


def make_planner(cfg: PlannerConfig, pools: dict[str, Pool], granularity: int = 8) -> PlannerLike:
    if cfg.policy == "dynamo":
        from llmreplay.planner.dynamo.replay_adapter import DynamoPlanner

        return DynamoPlanner(cfg, pools, granularity=granularity)
    return Planner(cfg, pools, granularity=granularity)
