"""Planner configuration: Dynamo's ``PlannerConfig`` field names, spellings and defaults.

A Dynamo user's ``--planner-config`` JSON means the same here. Keys that mean nothing in a replay are
accepted with a one-line warning; any other unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llmreplay.engine.config import format_validation_error
from llmreplay.errors import InputError

#: Dynamo keys with no meaning in an offline replay: accepted, warned about, ignored
IGNORED_KEYS = (
    "environment", "backend", "namespace", "live_dashboard_port", "throughput_metrics_source", "advisory",
    "report_interval_hours", "report_output_dir", "report_write_gzip_log", "prophet_window_size",
    "load_predictor_log1p", "max_num_fpm_samples", "fpm_sample_bucket_size", "min_gpu_budget",
    "load_predictor_warmup_trace", "speculative_nextn", "aic_interpolation", "aic_perf_model",
)  # fmt: skip
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

    policy: Literal["llmreplay", "scripted"] = Field(
        "llmreplay", description="Who decides: llmreplay (the SLA planner), scripted (follow `schedule`)."
    )
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
    throughput_adjustment_interval: float = Field(180.0, gt=0, description="Seconds between throughput ticks.")
    load_adjustment_interval: float = Field(5.0, gt=0, description="Seconds between load ticks.")
    load_predictor: Literal["constant", "moving_average", "kalman", "arima"] = Field(
        "constant", description="Forecast of next interval's traffic (arima needs llmreplay[arima])."
    )
    min_endpoint: int = Field(1, ge=0, description="Fewest workers per component.")
    max_gpu_budget: int = Field(8, description="Most GPUs in all (−1: no limit).")
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
                and self.optimization_target == "sla":
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
        canonical = ALIASES.get(key, key)
        if canonical in values:
            raise InputError(f"planner_config: both '{key}' and '{canonical}' given; keep one.")
        values[canonical] = value
    try:
        cfg = PlannerConfig.model_validate(values)
    except ValidationError as exc:
        valid = sorted(set(PlannerConfig.model_fields) | set(ALIASES))
        raise InputError(format_validation_error(exc, "--planner-config", valid)) from None
    return cfg, warnings
