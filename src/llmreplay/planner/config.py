"""Planner configuration: Dynamo's ``PlannerConfig`` field names, spellings and defaults.

A Dynamo user's ``--planner-config`` JSON means the same here. Keys that mean nothing in a replay are
accepted with a one-line warning; any other unknown key is an error that lists the valid ones.

``policy`` picks who decides: ``dynamo`` (the default: Dynamo 1.6.1's planner, rule for rule, see
``docs/planner.md``), ``scripted`` (a given replica schedule) or ``llmreplay`` (our improved policy:
interval means and peaks, a six-tick look-back
before a scale-down).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmreplay.engine.config import format_validation_error
from llmreplay.errors import InputError

#: Dynamo keys with no meaning in an offline replay: accepted, warned about, ignored
IGNORED_KEYS = (
    "environment", "backend", "namespace", "live_dashboard_port", "throughput_metrics_source", "advisory",
    "report_interval_hours", "report_output_dir", "report_write_gzip_log", "prophet_window_size",
    "control_api_port", "metric_reporting_prometheus_port", "log_dir", "model_name",
)  # fmt: skip
#: Dynamo keys the replay cannot honour unless they keep their default (value → why)
UNSUPPORTED_UNLESS = {
    "load_predictor_log1p": (False, "the log1p ARIMA mode is not reproduced"),
    "speculative_nextn": (0, "speculative decoding is not simulated"),
    "load_predictor_warmup_trace": (None, "predictor warm-up from a trace is not implemented"),
    "aic_interpolation": (None, "AIC interpolation bootstrap is not implemented; use pre_deployment_sweeping_mode "
                                "'rapid' with perf_model 'aic'"),
    "aic_perf_model": (None, "the native AIC planner perf model is not implemented (Dynamo's default, the FPM "
                             "regression, is)"),
    "ais_perf_model": (None, "the native AIS planner perf model is not implemented (Dynamo's default, the FPM "
                             "regression, is)"),
    "enable_power_awareness": (False, "power budgets are not simulated"),
}
LoadPredictorName = Literal["constant", "moving_average", "kalman", "arima"]
#: the shortest planner interval accepted: a tick every few simulated milliseconds is no planner Dynamo runs
MIN_INTERVAL_S = 0.1


class Scheduling(BaseModel):
    """Dynamo's ``scheduling`` block."""

    model_config = ConfigDict(extra="forbid")

    tick_max_duration_seconds: float = Field(
        30.0, gt=0, description="Dynamo's wall-clock deadline on one tick's planner work: meaningless in a "
        "simulator (a tick never times out); accepted and recorded.")
    scale_interval_seconds: float | None = Field(
        None, ge=MIN_INTERVAL_S, description="Pipeline cadence; default: gcd of the enabled loop intervals.")
    external_plugins: list[Any] = Field(default_factory=list, max_length=0,
                                        description="External planner plugins: not supported (must be empty).")
    gateway: dict[str, Any] = Field(default_factory=dict, description="Plugin gateway: must stay disabled.")

    @model_validator(mode="after")
    def _check(self) -> Scheduling:
        if self.gateway.get("enabled"):
            raise ValueError("scheduling.gateway.enabled: external plugins are not supported in a replay")
        return self
IGNORED_PREFIXES = ("kalman_",)

#: Dynamo's other spellings → ours
ALIASES = {
    "ttft_ms": "ttft",
    "itl_ms": "itl",
    "throughput_adjustment_interval_seconds": "throughput_adjustment_interval",
    "load_adjustment_interval_seconds": "load_adjustment_interval",
}

#: Dynamo's static thresholds of the non-SLA targets: (prefill queue up, down) as multiples of the prefill
#: unit, (decode KV utilisation up, down) as fractions.
TARGET_THRESHOLDS = {
    "throughput": ((1.0, 0.1), (1.0, 0.6)),
    "latency": ((0.1, 0.0), (0.4, 0.1)),
}


class PlannerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy: Literal["dynamo", "llmreplay", "scripted"] = Field(
        "dynamo", description="Who decides: dynamo (Dynamo 1.6.1's planner), llmreplay (our improved policy), "
        "scripted (follow `schedule`).")
    schedule: str | list[dict[str, Any]] | None = Field(
        None, description="policy scripted: CSV t_s,component,replicas (path relative to the config's folder)."
    )
    mode: Literal["agg", "disagg"] | None = Field(None, description="agg or disagg; default: from the topology.")
    optimization_target: Literal["throughput", "latency", "load", "sla"] = Field(
        "throughput", description="sla: scale on predicted TTFT/ITL; others: static thresholds (Dynamo's)."
    )
    ttft: float = Field(500.0, gt=0, description="TTFT SLA, ms.")
    itl: float = Field(50.0, gt=0, description="ITL SLA, ms.")
    enable_throughput_scaling: bool = Field(True, description="Predictive floor from forecast traffic.")
    enable_load_scaling: bool = Field(False, description="Reactive scaling on engine load.")
    throughput_adjustment_interval: float = Field(180.0, ge=MIN_INTERVAL_S,
                                                  description="Seconds between throughput ticks.")
    load_adjustment_interval: float = Field(5.0, ge=MIN_INTERVAL_S, description="Seconds between load ticks.")
    load_predictor: LoadPredictorName | None = Field(
        None, description="Forecast of next interval's traffic. Default: arima under policy dynamo (as Dynamo; "
        "needs llmreplay[arima]), constant under llmreplay."
    )
    min_endpoint: int = Field(1, ge=0, description="Fewest workers per component.")
    prefill_min_endpoint: int | None = Field(None, ge=0, description="Fewest prefill workers (dynamo; default "
                                             "min_endpoint).")
    decode_min_endpoint: int | None = Field(None, ge=0, description="Fewest decode workers (dynamo; default "
                                            "min_endpoint).")
    max_gpu_budget: int = Field(8, ge=-1, description="Most GPUs in all (−1: no limit).")
    min_gpu_budget: int = Field(-1, ge=-1, description="Fewest GPUs in all (−1: no floor; policy dynamo).")
    max_throughput_scaling_replicas: int = Field(8, ge=1, description="Most replicas one throughput tick moves "
                                                 "(policy dynamo).")
    max_num_fpm_samples: int = Field(64, ge=1, description="FPM samples each perf-model store keeps (dynamo).")
    fpm_sample_bucket_size: int = Field(16, ge=1, description="Retention grid cells (a perfect square; dynamo).")
    scheduling: Scheduling = Field(default_factory=Scheduling, description="Dynamo's scheduling block.")
    prefill_engine_num_gpu: int | None = Field(None, gt=0, description="GPUs per prefill worker (default: TP).")
    decode_engine_num_gpu: int | None = Field(None, gt=0, description="GPUs per decode/agg worker (default: TP).")
    pre_deployment_sweeping_mode: Literal["rapid", "none", "thorough"] = Field(
        "rapid", description="rapid: bootstrap the regression from the engine's perf model; none: from "
        "profile_results_dir."
    )
    profile_results_dir: str | None = Field(None, description="Measured points (table perf-model format).")
    report_filename: str | None = Field(None, description="HTML report name under ./planner_reports/.")
    load_scaling_down_sensitivity: float = Field(80.0, gt=0, le=100,
                                                 description="% of the SLA a scale-down must still meet.")
    load_min_observations: int = Field(5, ge=1, description="FPM observations before SLA load scaling acts.")
    prefill_scale_up_queue_tokens: float | None = Field(None, ge=0, description="target=load: queue up.")
    prefill_scale_down_queue_tokens: float | None = Field(None, ge=0, description="target=load: queue down.")
    decode_scale_up_kv_rate: float | None = Field(None, ge=0, le=100, description="target=load: KV % up.")
    decode_scale_down_kv_rate: float | None = Field(None, ge=0, le=100, description="target=load: KV % down.")

    @model_validator(mode="after")
    def _check(self) -> PlannerConfig:
        if (self.policy == "scripted") != (self.schedule is not None):
            raise ValueError("policy 'scripted' needs a schedule (CSV t_s,component,replicas), and a schedule "
                             "is only for policy 'scripted'")
        root = math.isqrt(self.fpm_sample_bucket_size)
        if root * root != self.fpm_sample_bucket_size:
            raise ValueError(f"fpm_sample_bucket_size must be a perfect square (got {self.fpm_sample_bucket_size})")
        if self.min_gpu_budget >= 0 and 0 <= self.max_gpu_budget < self.min_gpu_budget:
            raise ValueError("min_gpu_budget must not exceed max_gpu_budget")
        if self.optimization_target != "sla":
            # Dynamo forces the reactive loop for its threshold targets
            object.__setattr__(self, "enable_load_scaling", True)
            object.__setattr__(self, "enable_throughput_scaling", False)
        if self.optimization_target == "load":
            missing = [k for k in ("prefill_scale_up_queue_tokens", "prefill_scale_down_queue_tokens",
                                   "decode_scale_up_kv_rate", "decode_scale_down_kv_rate") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"optimization_target 'load' needs {', '.join(missing)}")
        if self.load_adjustment_interval >= self.throughput_adjustment_interval and self.enable_throughput_scaling \
                and self.enable_load_scaling:
            raise ValueError("load_adjustment_interval must be shorter than throughput_adjustment_interval")
        if self.pre_deployment_sweeping_mode == "thorough":
            raise ValueError("pre_deployment_sweeping_mode 'thorough' profiles real GPUs; use 'rapid' "
                             "(bootstrap from the engine's perf model) or 'none' with profile_results_dir")
        if self.pre_deployment_sweeping_mode == "none" and self.profile_results_dir is None \
                and self.optimization_target == "sla" and self.policy == "llmreplay":
            raise ValueError("pre_deployment_sweeping_mode 'none' needs profile_results_dir")
        return self


def parse_planner_config(raw: dict[str, Any]) -> tuple[PlannerConfig, list[str]]:
    """Validate a Dynamo-style planner config; return it with warnings for ignored keys."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        if key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES):
            warnings.append(f"planner_config.{key} has no meaning in a replay; ignored.")
            continue
        if key in UNSUPPORTED_UNLESS:
            allowed, why = UNSUPPORTED_UNLESS[key]
            if value != allowed:
                raise InputError(f"planner_config.{key} = {value!r}: {why}. Remove it or set it to {allowed!r}.")
            continue
        canonical = ALIASES.get(key, key)
        if canonical in values:
            raise InputError(f"planner_config: both '{key}' and '{canonical}' given; keep one.")
        values[canonical] = value
    try:
        cfg = PlannerConfig.model_validate(values)
    except ValidationError as exc:
        valid = sorted(set(PlannerConfig.model_fields) | set(ALIASES))
        raise InputError(format_validation_error(exc, "--planner-config", valid)) from None
    if "scheduling" in raw and "tick_max_duration_seconds" in (raw.get("scheduling") or {}):
        warnings.append(f"planner_config.scheduling.tick_max_duration_seconds = "
                        f"{cfg.scheduling.tick_max_duration_seconds:g}: Dynamo's wall-clock deadline on one tick's "
                        "work has no meaning in a simulator (ticks never time out); recorded, not applied.")
    if cfg.profile_results_dir is not None:
        warnings.append("planner_config.profile_results_dir is not read (importing profiler results is not "
                        "implemented): the perf model bootstraps from the engine's perf model "
                        "(pre_deployment_sweeping_mode 'rapid') or starts empty ('none').")
    if cfg.load_predictor is None:
        default: LoadPredictorName = "constant"
        if cfg.policy == "dynamo":
            from llmreplay.planner.dynamo.predictors import pmdarima_available

            if pmdarima_available():
                default = "arima"
            elif cfg.enable_throughput_scaling:
                warnings.append("load_predictor_default_substituted: Dynamo's default load predictor is ARIMA "
                                "(pmdarima), not installed here; using 'constant'. Install llmreplay[arima] or "
                                "set \"load_predictor\" explicitly.")
        object.__setattr__(cfg, "load_predictor", default)
    if cfg.policy == "llmreplay":
        for key in ("min_gpu_budget", "max_throughput_scaling_replicas", "prefill_min_endpoint",
                    "decode_min_endpoint", "max_num_fpm_samples", "fpm_sample_bucket_size"):
            if key in raw:
                warnings.append(f"planner_config.{key} is a Dynamo setting that policy 'llmreplay' ignores.")
    elif cfg.policy == "dynamo" and cfg.load_predictor in ("moving_average", "kalman"):
        raise InputError(f"planner_config.load_predictor '{cfg.load_predictor}' is not available under policy "
                         "'dynamo' (supported: constant, arima); use policy 'llmreplay' for it.")
    return cfg, warnings
