"""Grid expansion: the cartesian product of the axes (times repeats), one :class:`Point` per run.

A point's id is a short hash of its overrides and seed only, so it stays the same when the base config is
edited or when the grid is extended; that is what lets a re-run find the points it has already done. Whether
a stored result still matches the point's full config is a separate check (``config_hash``).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import math
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from llmreplay.cluster.router import RouterConfig
from llmreplay.config import RunConfig, build_run_config
from llmreplay.engine.config import format_validation_error, parse_engine_args
from llmreplay.engine.perf.hw import resolve_hardware
from llmreplay.engine.perf.registry import build_engine_perf_model
from llmreplay.errors import InputError
from llmreplay.planner.config import parse_planner_config
from llmreplay.sweep.spec import MAX_POINTS_CEILING, Sweep, canonical_json

ID_LENGTH = 10


@dataclass(frozen=True)
class Point:
    """One run of the sweep."""

    index: int
    id: str
    #: axis path → value, in axis order
    overrides: dict[str, Any]
    repeat: int
    seed: int
    #: the run-config mapping of this point: base with the overrides applied and the seed set
    values: dict[str, Any]
    #: hash of ``values``: a stored result with another hash came from an edited base and is run again
    config_hash: str

    def describe(self) -> str:
        parts = [f"{k}={canonical_json(v)}" for k, v in self.overrides.items()]
        return ", ".join([*parts, f"seed={self.seed}"])


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:ID_LENGTH]


def point_id(overrides: dict[str, Any], seed: int) -> str:
    return short_hash(canonical_json({"overrides": overrides, "seed": seed}))


def grid_size(sweep: Sweep) -> int:
    """Runs in the sweep: the product of the axis lengths, times the repeats (computed, not expanded)."""
    return math.prod(len(a.values) for a in sweep.axes) * sweep.spec.repeats


def expand(sweep: Sweep, max_points: int | None = None) -> list[Point]:
    """All points, first axis outermost and repeats innermost (the order of the results table). More than
    ``max_points`` (default: the sweep file's ``max_points``) is an InputError before anything is built."""
    limit = sweep.spec.max_points if max_points is None else max_points
    size = grid_size(sweep)
    if size > limit:
        lengths = " × ".join(f"{len(a.values):,} ({a.path})" for a in sweep.axes)
        reps = f" × {sweep.spec.repeats} repeats" if sweep.spec.repeats > 1 else ""
        raise InputError(f"{sweep.source}: the grid has {size:,} runs ({lengths}{reps}), more than the cap of "
                         f"{limit:,}. Shrink the axes, or raise the cap with --max-points N (or max_points: N "
                         f"in the sweep file; at most {MAX_POINTS_CEILING:,}).")
    paths = [a.path for a in sweep.axes]
    points: list[Point] = []
    for combo in itertools.product(*(a.values for a in sweep.axes)):
        overrides = dict(zip(paths, combo, strict=True))
        values = copy.deepcopy(sweep.base)
        for path, value in overrides.items():
            set_path(values, path, copy.deepcopy(value), sweep.source)
        base_seed = values.get("seed", RunConfig.model_fields["seed"].default)
        if not isinstance(base_seed, int) or isinstance(base_seed, bool):
            raise InputError(f"{sweep.source}: seed must be an integer (got {base_seed!r}).")
        for r in range(sweep.spec.repeats):
            seed = base_seed + r
            pv = {**values, "seed": seed}
            points.append(Point(len(points), point_id(overrides, seed), overrides, r, seed, pv,
                                short_hash(canonical_json(pv))))
    return points


def set_path(values: dict[str, Any], path: str, value: Any, source: str) -> None:
    """Set ``a.b.c`` in a nested mapping, creating the objects on the way (a planner_config axis on a base
    without one gives the planner its defaults plus that key)."""
    parts = path.split(".")
    node = values
    for i, key in enumerate(parts[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise InputError(f"{source}: axes.{path}: base value of '{where}' is {child!r}, not an object, "
                             "so it has no sub-keys.")
        node = child
    node[parts[-1]] = value


def point_configs(sweep: Sweep, points: list[Point]) -> list[RunConfig]:
    """Validate every point before any runs, so a typo in an engine-arg or planner key exits 2 at once."""
    configs: list[RunConfig] = []
    checked_engines: set[str] = set()
    for p in points:
        where = f"{sweep.source}: point {p.index} ({p.describe()})"
        cfg = build_run_config(p.values, source=where, base_dir=sweep.base_dir)
        try:
            _check_point(cfg, checked_engines)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        configs.append(cfg)
    return configs


def _check_point(cfg: RunConfig, checked_engines: set[str]) -> None:
    """What ``runner.run`` would reject before simulating, checked here without simulating."""
    if cfg.trace is None:
        raise InputError("no trace: set 'trace' in base (a path relative to the sweep file) or sweep it.")
    for key in ("extra_engine_args", "prefill_engine_args", "decode_engine_args"):
        raw = getattr(cfg, key)
        if raw is None and key != "extra_engine_args":
            continue
        text = canonical_json(raw or {})
        if text in checked_engines:
            continue
        args = parse_engine_args(raw, source=key)
        build_engine_perf_model(args, resolve_hardware(args))
        checked_engines.add(text)
    if cfg.planner_config is not None:
        parse_planner_config(cfg.planner_config)
    try:
        RouterConfig.model_validate(cfg.router_config or {})
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, "router_config", sorted(RouterConfig.model_fields))) from None
