"""Command-line options generated from the config models, so a field and its flag cannot drift apart.

Each field of a pydantic model (``RunConfig``) becomes one ``--field-name`` option (plus the Dynamo spellings
kept on the field, see :func:`llmreplay.config.cli`) with the field's description as help, its default shown
and its numeric range checked by click at parse time. ``docs/usage.md``'s option tables come from the same
fields (:mod:`llmreplay.cli.docgen`).

A flag given on the command line is passed on only when the user typed it (its typer default is ``None``),
so a ``--config`` file's value is overridden only by flags actually given.
"""

from __future__ import annotations

import functools
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from rich.markup import escape

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class FieldOption:
    """What the command line and the docs show for one config field."""

    name: str
    flags: tuple[str, ...]
    python_type: type
    choices: tuple[str, ...] | None
    default: Any
    help: str
    lo: float | None
    lo_open: bool
    hi: float | None
    hi_open: bool
    #: a boolean field set by a bare flag to the opposite of its default (``--reference-steps``)
    sets: bool | None = None

    @property
    def range_text(self) -> str:
        """The allowed range as the docs write it, e.g. ``> 0, <= 1e+08``."""
        parts = []
        if self.lo is not None:
            parts.append(f"{'>' if self.lo_open else '>='} {_num(self.lo)}")
        if self.hi is not None:
            parts.append(f"{'<' if self.hi_open else '<='} {_num(self.hi)}")
        return ", ".join(parts)


def _num(x: float) -> str:
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):_}" if abs(x) >= 10_000 else str(int(x))
    return f"{x:g}"


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
        # str | dict (perf_model-like): the command line gives text
        return str
    return annotation


def field_option(name: str, info: FieldInfo) -> FieldOption:
    """The option of one model field: flags, CLI type, default, help and range from the field itself."""
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    base = _strip_optional(info.annotation)
    choices: tuple[str, ...] | None = None
    if get_origin(base) is Literal:
        choices = tuple(str(c) for c in get_args(base))
        python_type: type = str
    elif base in (int, float, bool, str):
        python_type = base
    else:  # dict-valued (engine args, planner config): inline JSON or a file path on the command line
        python_type = str
    lo = hi = None
    lo_open = hi_open = False
    for m in info.metadata:
        if isinstance(m, annotated_types.Gt):
            lo, lo_open = float(m.gt), True  # type: ignore[arg-type]
        elif isinstance(m, annotated_types.Ge):
            lo, lo_open = float(m.ge), False  # type: ignore[arg-type]
        elif isinstance(m, annotated_types.Lt):
            hi, hi_open = float(m.lt), True  # type: ignore[arg-type]
        elif isinstance(m, annotated_types.Le):
            hi, hi_open = float(m.le), False  # type: ignore[arg-type]
    flag = extra.get("cli_flag")
    aliases = extra.get("cli_aliases")
    flags = (str(flag),) if flag else ("--" + name.replace("_", "-"),
                                       *(map(str, aliases) if isinstance(aliases, list) else ()))
    default = None if info.default is PydanticUndefined else info.default
    sets = (not default) if python_type is bool and flag else None
    return FieldOption(name, flags, python_type, choices, default, info.description or "", lo, lo_open, hi,
                       hi_open, sets)


def model_options(model: type[BaseModel], exclude: Iterable[str] = ()) -> list[FieldOption]:
    skip = set(exclude)
    return [field_option(n, f) for n, f in model.model_fields.items() if n not in skip]


def check_value(opt: FieldOption, value: float) -> str | None:
    """Why ``value`` is not allowed for ``opt`` (not finite, or out of the field's range), or None."""
    if not math.isfinite(float(value)):
        return f"must be a finite number{' ' + opt.range_text if opt.range_text else ''} (got {value!r})"
    too_low = opt.lo is not None and (value <= opt.lo if opt.lo_open else value < opt.lo)
    too_high = opt.hi is not None and (value >= opt.hi if opt.hi_open else value > opt.hi)
    if too_low or too_high:
        return f"must be {opt.range_text} (got {value!r})"
    return None


def _range_callback(opt: FieldOption) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value is not None:
            why = check_value(opt, value)
            if why is not None:
                raise typer.BadParameter(why)
        return value

    return check


def help_text(opt: FieldOption) -> str:
    """The option's help as the console shows it: description, range and default (the default is written
    here because the option's own default is None: only flags the user typed override a --config file)."""
    text = escape(opt.help)
    if opt.range_text:
        text += f" Range: {opt.range_text}."
    if opt.sets is None and opt.default is not None:
        text += escape(f" [default: {opt.default}]")
    return text


def in_range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False) -> Callable[[Any], Any]:
    """A typer ``callback`` for a hand-written numeric option: finite and within [lo, hi] (or open ends)."""
    opt = FieldOption("", (), float, None, None, "", lo, lo_open, hi, hi_open)
    return _range_callback(opt)


def _typer_parameter(opt: FieldOption) -> inspect.Parameter:
    kwargs: dict[str, Any] = {"help": help_text(opt), "show_default": False}
    if opt.sets is not None:
        annotation: Any = bool
        default: Any = False
    else:
        annotation = (Literal[opt.choices] if opt.choices else opt.python_type) | None
        default = None
        if opt.python_type in (int, float):
            kwargs["callback"] = _range_callback(opt)
    info = typer.Option(*opt.flags, **kwargs)
    return inspect.Parameter(opt.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, info])


def with_model_options(model: type[BaseModel], exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Add one option per field of ``model`` to a typer command. The command receives the options the user
    gave as ``flags: dict[str, Any]`` (field name → value; a flag-style boolean as its field's value)."""
    options = model_options(model, exclude)

    def decorate(func: F) -> F:
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "flags"]
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        params += [_typer_parameter(o) for o in options]

        @functools.wraps(func)
        def command(**kwargs: Any) -> Any:
            flags: dict[str, Any] = {}
            for o in options:
                value = kwargs.pop(o.name)
                if o.sets is not None:
                    if value:
                        flags[o.name] = o.sets
                elif value is not None:
                    flags[o.name] = value
            return func(**kwargs, flags=flags)

        del command.__wrapped__  # typer must read the generated signature, not the function's own
        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command  # type: ignore[return-value]

    return decorate
