"""``policy: scripted``: the fleet follows a given replica schedule instead of deciding for itself.

Why: a user replays what their cluster actually did (a schedule exported from a production autoscaler's log),
and the hindsight baseline (:mod:`llmreplay.baselines`) verifies its schedule through the same physics as any
planner: a scale-up is billed at once and serves after the engine's ``startup_time``; a scale-down drains the
newest worker, which stops (and stops being billed) when its last request ends.

The schedule is a CSV ``t_s,component,replicas`` (component ``agg`` in an agg run, ``prefill`` / ``decode`` in
disagg) or the same rows inline as a list of mappings. Each row sets the component's target replica count
(starting + active workers) from ``t_s`` on.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmreplay.cluster.pool import Pool
from llmreplay.cluster.worker import State
from llmreplay.errors import InputError
from llmreplay.fileio import read_text
from llmreplay.planner.config import PlannerConfig
from llmreplay.planner.planner import ScalingEvent
from llmreplay.units import NS_PER_S, s_to_ns

COLUMNS = ("t_s", "component", "replicas")


@dataclass(frozen=True)
class ScheduleRow:
    t_s: float
    component: str
    replicas: int


def load_schedule(source: str | list[Any], components: tuple[str, ...]) -> list[ScheduleRow]:
    """Parse and check a schedule (CSV path, or inline rows); rows come back sorted by time."""
    if isinstance(source, str):
        text = read_text(source, "planner_config.schedule")
        reader = csv.DictReader(io.StringIO(text))
        header = tuple(h.strip() for h in (reader.fieldnames or ()))
        if header != COLUMNS:
            raise InputError(f"planner_config.schedule: {source}: the header must be "
                             f"'{','.join(COLUMNS)}' (got '{','.join(header)}').")
        raw = [(f"{source}:{i}", row) for i, row in enumerate(reader, start=2)]
    else:
        raw = [(f"planner_config.schedule[{i}]", row) for i, row in enumerate(source)]
    rows: list[ScheduleRow] = []
    seen: set[tuple[float, str]] = set()
    for where, row in raw:
        rows.append(_parse_row(where, row, components))
        key = (rows[-1].t_s, rows[-1].component)
        if key in seen:
            raise InputError(f"{where}: a second row for component '{key[1]}' at t_s={key[0]:g}; keep one.")
        seen.add(key)
    if not rows:
        raise InputError("planner_config.schedule has no rows: give at least one 't_s,component,replicas' row.")
    return sorted(rows, key=lambda r: r.t_s)


def _parse_row(where: str, row: Any, components: tuple[str, ...]) -> ScheduleRow:
    if not isinstance(row, dict) or set(row) - set(COLUMNS) - {None} or any(k not in row for k in COLUMNS):
        raise InputError(f"{where}: a schedule row needs exactly the fields {', '.join(COLUMNS)} (got {row!r}).")
    try:
        t_s = float(str(row["t_s"]).strip())
    except ValueError:
        raise InputError(f"{where}: t_s '{row['t_s']}' is not a number of seconds.") from None
    if not math.isfinite(t_s) or t_s < 0:
        raise InputError(f"{where}: t_s must be a finite number of seconds >= 0 (got {row['t_s']}).")
    component = str(row["component"]).strip()
    if component not in components:
        raise InputError(f"{where}: component '{component}' is not scaled in this run; use "
                         f"{' or '.join(repr(c) for c in components)}.")
    text = str(row["replicas"]).strip()
    if not text.isdigit():
        raise InputError(f"{where}: replicas '{row['replicas']}' must be a whole number >= 0.")
    return ScheduleRow(t_s, component, int(text))


@dataclass
class ScriptedPolicy:
    """Applies a schedule at its own times. Same report interface as :class:`~llmreplay.planner.planner.Planner`
    (``events``, ``warnings``, ``wall_s``, ``report()``), so costs and charts read the same."""

    cfg: PlannerConfig
    pools: dict[str, Pool]
    events: list[ScalingEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        components = ("agg",) if "agg" in self.pools else ("prefill", "decode")
        assert self.cfg.schedule is not None  # checked by PlannerConfig
        self.schedule = load_schedule(self.cfg.schedule, components)
        #: the distinct change times, in ns: the replay calls :meth:`apply` at each
        self.times_ns = sorted({s_to_ns(r.t_s) for r in self.schedule})

    def apply(self, now: int, start_worker: Any) -> None:
        """Bring every component with a row at ``now`` to its scheduled count."""
        t0 = time.perf_counter()
        for row in self.schedule:
            if s_to_ns(row.t_s) != now:
                continue
            pool = self.pools[row.component]
            current = pool.count(State.STARTING, State.ACTIVE)
            if row.replicas == current:
                continue
            reason = "scale_up" if row.replicas > current else "scale_down"
            self.events.append(ScalingEvent(round(now / NS_PER_S, 6), row.component, current, row.replicas, reason))
            for _ in range(row.replicas - current):
                start_worker(pool, now)
            for _ in range(current - row.replicas):
                pool.drain_worker(now)
        self.wall_s += time.perf_counter() - t0

    def report(self) -> dict[str, Any]:
        return {
            "policy": "scripted",
            "ticks": [],
            "decisions": {},
            "events": [e.to_dict() for e in self.events],
            "schedule": [{"t_s": r.t_s, "component": r.component, "replicas": r.replicas} for r in self.schedule],
        }


def write_schedule_csv(path: Path, rows: list[ScheduleRow]) -> None:
    """Write a schedule in the CSV form ``policy: scripted`` reads."""
    lines = [",".join(COLUMNS)] + [f"{r.t_s:g},{r.component},{r.replicas}" for r in rows]
    path.write_text("\n".join(lines) + "\n")
