"""The Dynamo policy's resolved settings: Dynamo's ``PlannerConfig`` fields the decisions read."""

from __future__ import annotations

import math
from dataclasses import dataclass

from llmreplay.planner.config import PlannerConfig


@dataclass(frozen=True)
class Capabilities:
    """One engine stage as the planner knows it (``EngineCapabilities``)."""

    num_gpu: int = 1
    max_num_batched_tokens: int = 8192
    max_num_seqs: int = 256
    max_kv_tokens: int = 2_000_000
    context_length: int | None = None


@dataclass(frozen=True)
class DynamoSettings:
    mode: str = "agg"  # agg | disagg
    optimization_target: str = "sla"
    ttft_ms: float = 500.0
    itl_ms: float = 50.0
    enable_throughput_scaling: bool = True
    enable_load_scaling: bool = False
    throughput_interval_s: float = 180.0
    load_interval_s: float = 5.0
    scale_interval_s: float = 5.0
    min_endpoint: int = 1
    prefill_min_endpoint: int | None = None
    decode_min_endpoint: int | None = None
    max_gpu_budget: int = 8
    min_gpu_budget: int = -1
    max_throughput_scaling_replicas: int = 8
    load_scaling_down_sensitivity: float = 80.0
    load_min_observations: int = 5
    max_num_fpm_samples: int = 64
    prefill_scale_up_queue_tokens: float | None = None
    prefill_scale_down_queue_tokens: float | None = None
    decode_scale_up_kv_rate: float | None = None
    decode_scale_down_kv_rate: float | None = None
    load_predictor: str = "constant"

    def min_endpoint_for(self, component: str) -> int:
        """``resolve_min_endpoint``: a role's own floor, else ``min_endpoint``."""
        value = self.prefill_min_endpoint if component == "prefill" else self.decode_min_endpoint
        return self.min_endpoint if value is None else value

    @property
    def easy(self) -> bool:
        """Dynamo's threshold targets (everything but ``sla``) use no perf model."""
        return self.optimization_target != "sla"


def scale_interval_s(load_s: float, throughput_s: float, throughput_on: bool) -> float:
    """Dynamo's default pipeline cadence: the gcd of the enabled loop intervals (to the microsecond)."""
    us = [round(load_s * 1e6)] + ([round(throughput_s * 1e6)] if throughput_on else [])
    return math.gcd(*us) / 1e6


def settings_from_config(cfg: PlannerConfig, mode: str) -> DynamoSettings:
    """The Dynamo policy's view of a validated planner config (``mode``: the run's topology)."""
    throughput_on = cfg.enable_throughput_scaling and cfg.optimization_target == "sla"
    scale = cfg.scheduling.scale_interval_seconds or scale_interval_s(
        cfg.load_adjustment_interval, cfg.throughput_adjustment_interval, throughput_on)
    return DynamoSettings(
        mode=mode, optimization_target=cfg.optimization_target, ttft_ms=cfg.ttft, itl_ms=cfg.itl,
        enable_throughput_scaling=throughput_on, enable_load_scaling=cfg.enable_load_scaling,
        throughput_interval_s=cfg.throughput_adjustment_interval, load_interval_s=cfg.load_adjustment_interval,
        scale_interval_s=scale, min_endpoint=cfg.min_endpoint, prefill_min_endpoint=cfg.prefill_min_endpoint,
        decode_min_endpoint=cfg.decode_min_endpoint, max_gpu_budget=cfg.max_gpu_budget,
        min_gpu_budget=cfg.min_gpu_budget, max_throughput_scaling_replicas=cfg.max_throughput_scaling_replicas,
        load_scaling_down_sensitivity=cfg.load_scaling_down_sensitivity,
        load_min_observations=cfg.load_min_observations, max_num_fpm_samples=cfg.max_num_fpm_samples,
        prefill_scale_up_queue_tokens=cfg.prefill_scale_up_queue_tokens,
        prefill_scale_down_queue_tokens=cfg.prefill_scale_down_queue_tokens,
        decode_scale_up_kv_rate=cfg.decode_scale_up_kv_rate, decode_scale_down_kv_rate=cfg.decode_scale_down_kv_rate,
        load_predictor=cfg.load_predictor or "constant",
    )
