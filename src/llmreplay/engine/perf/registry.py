"""Perf-model registry: ``perf_model`` engine arg → a :class:`PerfModel`.

``perf_model`` is a kind name (``"roofline"``, the default, or ``"polynomial"``) or an object with ``kind``
and that kind's parameters, e.g. ``{"kind": "constant", "step_ms": 10}``. Each kind is one
:class:`PerfKind` entry in :data:`PERF_KINDS`: its parameters (with their docs) and a builder. Adding a kind
is adding one entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmreplay.engine.config import DYNAMO_AIC_KEYS, EngineArgs
from llmreplay.engine.perf.aic import AIC_PARAMS, build_aic  # AIC itself is imported only when built
from llmreplay.engine.perf.base import PerfModel
from llmreplay.engine.perf.constant import ConstantModel
from llmreplay.engine.perf.hw import HardwareSetup
from llmreplay.engine.perf.polynomial import DEFAULT_DECODE, DYNAMO_PREFILL, PolynomialModel
from llmreplay.engine.perf.roofline import RooflineModel, RooflineParams
from llmreplay.engine.perf.table import TABLE_PARAMS, build_table
from llmreplay.errors import InputError

#: Dynamo's engine-arg name → the :class:`EngineArgs` field it sets
_FIELD_OF_KEY = {"aic_system": "gpu", "aic_model_path": "model", "aic_tp_size": "tp", "aic_backend": "aic_backend"}

Builder = Callable[[Mapping[str, Any], HardwareSetup], PerfModel]


@dataclass(frozen=True)
class PerfKind:
    """One perf-model kind: what it is, which parameters it takes, and how to build it."""

    name: str
    summary: str
    #: parameter name → one-line description (the only keys allowed beside ``kind``)
    params: dict[str, str] = field(default_factory=dict)
    #: parameters without a default: the kind cannot be selected by its bare name
    required: tuple[str, ...] = ()
    build: Builder | None = None
    #: a complete ``perf_model`` object for this kind, shown in errors
    example: str = ""
    #: set when the kind is planned but not available in this version (the error message says why)
    unavailable: str | None = None


# ---- parameter checks (each names the field and what is allowed) -------------------------------------------
def _where(kind: str, key: str) -> str:
    return f"perf_model ({kind}): field '{key}'"


def _number(kind: str, key: str, value: Any, *, lo: float = 0.0, lo_open: bool = False,
            hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{_where(kind, key)} must be a number (got {value!r}).")
    x = float(value)
    if (lo_open and x <= lo) or (not lo_open and x < lo) or (hi is not None and x > hi):
        rng = f"{'>' if lo_open else '>='} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        raise InputError(f"{_where(kind, key)} must be {rng} (got {value!r}).")
    return x


def _coeffs(kind: str, key: str, value: Any, meaning: str) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise InputError(f"{_where(kind, key)} must be a list of 3 numbers [{meaning}] (got {value!r}).")
    a, b, c = (_number(kind, f"{key}[{i}]", v) for i, v in enumerate(value))
    return a, b, c


# ---- builders ---------------------------------------------------------------------------------------------
_ROOFLINE_DOCS: dict[str, str] = {
    "step_overhead_ms": "fixed time of every step, ms (>= 0)",
    "eff_gemm_bf16": "fraction of the BF16 tensor peak reached by GEMMs (0-1]",
    "eff_gemm_fp8": "fraction of the FP8 tensor peak reached by GEMMs (0-1]",
    "eff_attn": "fraction of the BF16 tensor peak reached by prefill attention (0-1]",
    "eff_mem": "fraction of HBM bandwidth reached streaming weights and KV (0-1]",
    "eff_link": "fraction of the GPU-link bandwidth reached by TP all-reduce (0-1]",
    "allreduce_latency_us": "fixed latency of one TP all-reduce, µs (>= 0)",
}


def _build_roofline(params: Mapping[str, Any], hw: HardwareSetup) -> PerfModel:
    over: dict[str, float] = {}
    for key, value in params.items():
        if key.startswith("eff_"):
            over[key] = _number("roofline", key, value, lo=0.0, lo_open=True, hi=1.0)
        else:
            over[key] = _number("roofline", key, value)
    return RooflineModel(hw, RooflineParams().with_overrides(over))


def _build_polynomial(params: Mapping[str, Any], hw: HardwareSetup) -> PerfModel:
    prefill = DYNAMO_PREFILL
    decode = DEFAULT_DECODE
    if "prefill" in params:
        prefill = _coeffs("polynomial", "prefill", params["prefill"], "a, b, c of ms = a·T² + b·T + c")
        if sum(prefill) <= 0:
            raise InputError(f"{_where('polynomial', 'prefill')}: at least one coefficient must be > 0.")
    if "decode" in params:
        decode = _coeffs("polynomial", "decode", params["decode"], "c0, c1, c2 of ms = c0 + c1·n + c2·kv")
        if decode[0] + decode[1] <= 0:
            raise InputError(f"{_where('polynomial', 'decode')}: c0 or c1 must be > 0 so a decode step "
                             "takes time.")
    return PolynomialModel(prefill, decode)


def _build_constant(params: Mapping[str, Any], hw: HardwareSetup) -> PerfModel:
    step = _number("constant", "step_ms", params["step_ms"], lo=0.0, lo_open=True)
    per_tok = _number("constant", "prefill_ms_per_token", params.get("prefill_ms_per_token", 0.0))
    return ConstantModel(step, per_tok)


PERF_KINDS: dict[str, PerfKind] = {
    k.name: k
    for k in (
        PerfKind("roofline", "analytic roofline from GPU and model specs (default)", _ROOFLINE_DOCS,
                 build=_build_roofline),
        PerfKind("polynomial", "Dynamo-mocker-style closed-form fit",
                 {"prefill": "[a, b, c]: prefill ms = a·T² + b·T + c over new tokens T",
                  "decode": "[c0, c1, c2]: decode ms = c0 + c1·n_decode + c2·kv_tokens"},
                 build=_build_polynomial),
        PerfKind("constant", "every step takes step_ms (tests, queueing checks)",
                 {"step_ms": "time of every step, ms (> 0, required)",
                  "prefill_ms_per_token": "extra ms per new prefill token (>= 0, default 0)"},
                 required=("step_ms",), example='{"kind": "constant", "step_ms": 10}', build=_build_constant),
        PerfKind("aic", "NVIDIA AIConfigurator's database model (pip install 'llmreplay[aic]')", AIC_PARAMS,
                 build=build_aic),
        PerfKind("table", "interpolated table of measured step times", TABLE_PARAMS, required=("path",),
                 example='{"kind": "table", "path": "measured_steps.csv"}',
                 build=build_table),
    )
}


def _kinds_list() -> str:
    ready = [k for k, v in PERF_KINDS.items() if v.unavailable is None]
    later = [k for k, v in PERF_KINDS.items() if v.unavailable is not None]
    text = ", ".join(ready)
    if later:
        text += f" (not yet available: {', '.join(later)})"
    return text


def build_perf_model(spec: str | Mapping[str, Any], hw: HardwareSetup) -> PerfModel:
    """The perf model named by the ``perf_model`` engine arg, for hardware ``hw``."""
    if isinstance(spec, str):
        name, params = spec.strip().lower(), {}
    elif isinstance(spec, Mapping):
        if "kind" not in spec:
            raise InputError(f"perf_model: an object needs a 'kind'. Kinds: {_kinds_list()}.")
        raw_kind = spec["kind"]
        if not isinstance(raw_kind, str):
            raise InputError(
                f"perf_model: 'kind' must be a string (got {raw_kind!r}). Kinds: {_kinds_list()}."
            )
        name = raw_kind.strip().lower()
        params = {str(k): v for k, v in spec.items() if k != "kind"}
    else:
        raise InputError(f"perf_model must be a name or an object with 'kind' (got {spec!r}).")
    kind = PERF_KINDS.get(name)
    if kind is None:
        raise InputError(f"perf_model: unknown kind '{name}'. Kinds: {_kinds_list()}.")
    if kind.unavailable is not None or kind.build is None:
        raise InputError(
            f"perf_model '{name}' ({kind.summary}) {kind.unavailable or 'is not available'}; "
            f"available kinds: {', '.join(k for k, v in PERF_KINDS.items() if v.unavailable is None)}."
        )
    unknown = sorted(set(params) - set(kind.params))
    if unknown:
        allowed = ", ".join(kind.params) or "none"
        raise InputError(
            f"perf_model ({name}): unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}. Allowed: {allowed}."
        )
    missing = [r for r in kind.required if r not in params]
    if missing:
        example = kind.example or (
            "{" + f'"kind": "{name}", ' + ", ".join(f'"{r}": ...' for r in missing) + "}"
        )
        raise InputError(
            f"perf_model '{name}' needs parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}: "
            f"write it as an object, e.g. {example}."
        )
    return kind.build(params, hw)


def build_engine_perf_model(args: EngineArgs, hw: HardwareSetup) -> PerfModel:
    """The perf model of an engine's args: ``perf_model`` with Dynamo's ``aic_backend`` and a folder
    ``aic_model_path`` filled in when it selects AIC. The one place runs, sweeps and ``perf show`` build it.

    Dynamo's hardware names (``aic_system``, ``aic_model_path``, ``aic_tp_size``, ``aic_backend``) without a
    ``perf_model`` select AIC, as Dynamo's mocker does; without the extra that is an error naming both fixes
    rather than a silent fall-back to the roofline (a Dynamo user's command must give Dynamo's model)."""
    from llmreplay.engine.perf.aic import INSTALL_HINT, aic_available, aic_perf_spec

    if args.aic_selected_by_dynamo_names and not aic_available():
        used = ", ".join(k for k in DYNAMO_AIC_KEYS if getattr(args, _FIELD_OF_KEY[k]) is not None)
        raise InputError(
            f"engine args use Dynamo's AIConfigurator names ({used}) without perf_model, so steps are timed by "
            f"AIConfigurator as in Dynamo, and it is not installed. Either install it ({INSTALL_HINT}), or set "
            "\"perf_model\" (e.g. \"roofline\", the default for llmreplay's own names gpu/model/tp)."
        )
    return build_perf_model(aic_perf_spec(args.perf_model, args.aic_backend, args.model), hw)
