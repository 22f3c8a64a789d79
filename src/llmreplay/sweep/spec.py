"""The sweep file: a base run config plus the axes to vary, checked in full before any point runs.

A sweep of 31 four-second points should not die at point 17 on a typo, so everything that can be checked
without simulating is checked here (keys, paths, ranges) or in :mod:`llmreplay.sweep.grid` (each point's
resolved run config, engine args and planner config).
"""

from __future__ import annotations

import json
import math
import re
import typing
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmreplay.config import OUTPUT_FIELDS, RunConfig, build_run_config, load_json_option, read_mapping_file
from llmreplay.engine.config import format_validation_error
from llmreplay.errors import InputError

#: a range axis value: ``start..stop step s`` (``step`` defaults to 1)
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RANGE = re.compile(rf"^\s*({_NUM})\s*\.\.\s*({_NUM})(?:\s+step\s+({_NUM}))?\s*$")
#: a range longer than this is almost certainly a typo (e.g. ``0..300 step 0.001``)
MAX_AXIS_VALUES = 10_000
#: default cap on the runs of a sweep (grid points × repeats), and the most it can be raised to: each run is a
#: whole simulation, so even the default is days of work; the ceiling keeps the expanded grid in memory
MAX_POINTS = 10_000
MAX_POINTS_CEILING = 10_000_000


class SweepSpec(BaseModel):
    """The sweep file as written. Unknown keys are an error, so a misspelt ``repeat:`` does not pass silently."""

    model_config = ConfigDict(extra="forbid")

    base: dict[str, Any] = Field(default_factory=dict, description="A run config, as `run --config` accepts.")
    axes: dict[str, Any] = Field(default_factory=dict,
                                 description="Dotted run-config path → list of values or 'start..stop step s'.")
    repeats: int = Field(1, ge=1, description="Runs per grid point; repeat r uses seed = base seed + r.")
    report_html: bool = Field(False, description="Also write each point's HTML report under OUT/points/.")
    max_points: int = Field(MAX_POINTS, ge=1, le=MAX_POINTS_CEILING,
                            description="Most runs the grid may expand to (product of the axis lengths × "
                                        "repeats); a typo such as three 10,000-value ranges fails at once. "
                                        "`--max-points` on the command line overrides it.")


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its dotted run-config path and the values it takes, in order."""

    path: str
    values: tuple[Any, ...]

    @property
    def label(self) -> str:
        """The last path component: short enough for table headers and chart legends."""
        return self.path.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Sweep:
    """A checked sweep file: JSON-valued base options are loaded, so points can override their sub-keys."""

    spec: SweepSpec
    axes: tuple[Axis, ...]
    base: dict[str, Any]
    base_dir: Path
    source: str


def load_sweep(path: Path) -> Sweep:
    """Read and check a sweep file; relative paths inside it resolve against its folder."""
    if not path.is_file():
        raise InputError(f"sweep file {path}: no such file.")
    raw = read_mapping_file(path, "sweep file")
    return parse_sweep(raw, path.resolve().parent, str(path))


def parse_sweep(raw: dict[str, Any], base_dir: Path, source: str = "sweep file") -> Sweep:
    try:
        spec = SweepSpec.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source, sorted(SweepSpec.model_fields))) from None
    base = _resolve_base(spec.base, base_dir, source)
    if not spec.axes:
        raise InputError(f"{source}: 'axes' is missing or empty; give at least one axis, e.g. "
                         "extra_engine_args.startup_time: 0..300 step 10.")
    axes: list[Axis] = []
    for path, value in spec.axes.items():
        check_path(path, source)
        axes.append(Axis(path, tuple(axis_values(value, f"{source}: axes.{path}"))))
    return Sweep(spec, tuple(axes), base, base_dir, source)


def _resolve_base(base: dict[str, Any], base_dir: Path, source: str) -> dict[str, Any]:
    """Load file-valued options (``planner_config: planner.yaml``) so an axis can set one of their keys."""
    out = dict(base)
    for key, value in out.items():
        bad = _non_finite(value)
        if bad is not None:
            raise InputError(f"{source}: base.{key} holds {bad}; values must be finite numbers (no .nan or .inf).")
    for key in OUTPUT_FIELDS:
        if key in out:
            raise InputError(f"{source}: base.{key}: a sweep writes each point's outputs itself (OUT/points/, "
                             "and 'report_html: true' at the top level for HTML reports); remove it.")
    for key in _mapping_fields():
        if isinstance(out.get(key), str):
            out[key] = load_json_option(out[key], f"{source}: base.{key}", base_dir)
    # The base alone must be a valid run config: unknown keys fail here, before any point is expanded.
    build_run_config(out, source=f"{source}: base", base_dir=base_dir)
    return out


def _mapping_fields() -> list[str]:
    """RunConfig fields that hold an object (engine args, planner config, ...): the only ones with sub-keys."""
    fields = []
    for name, info in RunConfig.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        if any(typing.get_origin(a) is dict for a in args):
            fields.append(name)
    return fields


def check_path(path: str, source: str) -> None:
    """An axis path must start at a RunConfig field; only object-valued fields have sub-keys. Sub-keys are
    checked later, when each point's engine args and planner config are validated."""
    parts = path.split(".")
    head = parts[0]
    where = f"{source}: axes.{path}"
    if any(not p for p in parts):
        raise InputError(f"{where}: empty component in the dotted path.")
    valid = sorted(set(RunConfig.model_fields) - set(OUTPUT_FIELDS))
    if head not in valid:
        raise InputError(f"{where}: '{head}' is not a run config field. Valid first components: "
                         + ", ".join(valid) + ".")
    if len(parts) > 1 and head not in _mapping_fields():
        raise InputError(f"{where}: '{head}' is a single value, it has no sub-key '{parts[1]}'. Fields with "
                         "sub-keys: " + ", ".join(_mapping_fields()) + ".")


def axis_values(value: Any, where: str) -> list[Any]:
    """A list of values as given, or an inclusive ``start..stop step s`` range."""
    if isinstance(value, str):
        return parse_range(value, where)
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: expected a non-empty list of values or a range like '0..300 step 10' "
                         f"(got {value!r}).")
    seen: set[str] = set()
    for v in value:
        bad = _non_finite(v)
        if bad is not None:
            raise InputError(f"{where}: value {v!r} holds {bad}; axis values must be finite numbers (no .nan or "
                             ".inf), strings, booleans, lists or objects of those.")
        key = canonical_json(v)
        if key in seen:
            raise InputError(f"{where}: value {v!r} appears twice; each grid point must be distinct.")
        seen.add(key)
    return list(value)


def _non_finite(value: Any) -> float | None:
    """The first NaN or infinity inside ``value`` (a YAML ``.nan``/``.inf``), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for v in items:
        bad = _non_finite(v)
        if bad is not None:
            return bad
    return None


def parse_range(text: str, where: str) -> list[int | float]:
    """``start..stop step s``: stop is included when it lands on the grid.

    Values are ``start + i * step`` computed in decimal, so ``0..1 step 0.1`` gives exactly 0.1, 0.2, ... (no
    0.30000000000000004 from accumulated float steps), and the point ids of a re-run come out the same.
    """
    m = _RANGE.match(text)
    if m is None:
        raise InputError(f"{where}: '{text}' is not a range; write 'start..stop step s', e.g. '0..300 step 10', "
                         "or give a list of values.")
    start_s, stop_s, step_s = m.group(1), m.group(2), m.group(3) or "1"
    try:
        start, stop, step = Decimal(start_s), Decimal(stop_s), Decimal(step_s)
    except InvalidOperation:  # pragma: no cover - the regex only admits valid numbers
        raise InputError(f"{where}: '{text}' has a number Python cannot read.") from None
    if step == 0:
        raise InputError(f"{where}: the step of '{text}' is 0.")
    span = (stop - start) / step
    if span < 0:
        raise InputError(f"{where}: '{text}' is empty: with step {step_s} it never reaches {stop_s} "
                         "(use a negative step to count down).")
    count = int(span) + 1
    if count > MAX_AXIS_VALUES:
        raise InputError(f"{where}: '{text}' gives {count:,} values (at most {MAX_AXIS_VALUES:,}); "
                         "check the step.")
    integral = all(_is_int_literal(s) for s in (start_s, stop_s, step_s))
    values = [int(v) if integral else float(v) for v in (start + i * step for i in range(count))]
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{where}: '{text}' reaches beyond the largest float; use smaller numbers.")
    return values


def _is_int_literal(s: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", s) is not None


def canonical_json(value: Any) -> str:
    """One text per value, for ids and duplicate checks: sorted keys, and 10.0 written as 10 so a range that
    switches from an integer to a fractional step keeps the ids of the points it shares with the old one."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _canonical(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value
