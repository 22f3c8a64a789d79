"""Per-step GPU power: joules per engine step from the step's shape, idle power between steps.

Method (``docs/cost-energy.md`` has the derivation and the error bounds). One engine step of duration ``t``
(as timed by the run's perf model: roofline, AIConfigurator, measured table, ...) does a known amount of work,
counted the way :mod:`llmreplay.engine.perf.roofline` counts it: GEMM FLOPs at the weight dtype, lm_head and
attention FLOPs in BF16, and HBM bytes (weights streamed once, KV read). Spread over the worker's ``tp`` GPUs
that gives each GPU a compute utilisation ``u_c`` (FLOPs / (dense peak · t)) and a memory utilisation ``u_m``
(bytes / (HBM bandwidth · t)). Each GPU then draws

    P = P_idle + (P_max − P_idle) · min(1, u_c / COMPUTE_SATURATION + MEMORY_SHARE · u_m)

so a step's energy is ``tp · (P_idle · t + (P_max − P_idle) · min(t, W_c / COMPUTE_SATURATION + MEMORY_SHARE ·
W_m))`` with ``W_c``, ``W_m`` the step's compute and memory time at datasheet peak. It lies between idle and
max board power for any step, and rises with the work in the step and with its duration. A worker draws
``P_idle`` whenever it is provisioned and not stepping (starting, idle, draining), so a run's energy is
``Σ workers P_idle · gpus · provisioned time + Σ steps (P − P_idle) · gpus · t``: the engine accumulates only
the second term (:meth:`StepPower.decode_j`, :meth:`StepPower.mixed_j`), per fast-forwarded stretch, exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from llmreplay.engine.perf.hw import HardwareSetup
from llmreplay.engine.perf.roofline import RooflineModel
from llmreplay.errors import InputError

if TYPE_CHECKING:
    from llmreplay.cluster.pool import Pool

I64 = npt.NDArray[np.int64]

#: Share of the dense tensor-core peak at which a GPU reaches its board power limit. Hopper parts hit their
#: 700 W limit (and clock down) in large BF16/FP8 GEMMs at 60-75 % of dense peak; Splitwise (Patel et al.,
#: ISCA 2024, arXiv:2311.18677) measures the compute-bound prompt phase at the power cap on DGX-H100.
COMPUTE_SATURATION = 0.6

#: Share of the dynamic power range drawn by HBM streaming at full datasheet bandwidth with idle tensor cores.
#: Splitwise reports the memory-bound token phase well below the cap (its latency is unchanged at a 50 % power
#: cap); 0.5 puts a batch-1 decode of an 8B model on H100/H200 at ~40-45 % of max board power and a large
#: decode batch at ~60-65 %, the range of published vLLM decode measurements (±30 %, see docs/cost-energy.md).
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class GpuPower:
    """Board power of one GPU: ``max_w`` from the datasheet, ``idle_w`` with a model resident (CUDA context
    up, no kernel running). Each figure carries its source and the date it was read."""

    name: str
    max_w: float
    idle_w: float
    source: str
    date: str


#: idle: bare idle (nvidia-smi, no process) plus the CUDA-context step a served model keeps up; Vadari,
#: "The Model Parking Tax" (arXiv:2605.23918, 2026) measures +26-50 W for the context on HBM parts (H100,
#: A100), +66 W on L40S (GDDR6), and no dependence on the memory held.
GPU_POWER: dict[str, GpuPower] = {
    "a100_sxm": GpuPower("a100_sxm", 400.0, 90.0,
                         "max: NVIDIA A100 datasheet (80GB SXM, max TDP 400 W); idle: ~55 W bare idle + ~35 W "
                         "CUDA context (arXiv:2605.23918)", "2026-11"),
    "h100_sxm": GpuPower("h100_sxm", 700.0, 110.0,
                         "max: NVIDIA H100 datasheet (SXM, max TDP up to 700 W); idle: ~70 W bare idle + ~40 W "
                         "CUDA context (arXiv:2605.23918, 14-GPU H100 telemetry)", "2026-11"),
    "h200_sxm": GpuPower("h200_sxm", 700.0, 115.0,
                         "max: NVIDIA H200 datasheet (SXM, max TDP up to 700 W); idle: 73.65 W dormant "
                         "(nvidia-smi, RunPod H200 study by ConserveMode) + ~40 W CUDA context "
                         "(arXiv:2605.23918)", "2026-11"),
    "b200_sxm": GpuPower("b200_sxm", 1000.0, 180.0,
                         "max: NVIDIA HGX B200 datasheet (1,000 W per GPU); idle: estimate, no published "
                         "measurement found (H100 idle scaled by max board power)", "2026-11"),
    "l40s": GpuPower("l40s", 350.0, 100.0,
                     "max: NVIDIA L40S datasheet (350 W); idle: ~35 W bare idle + 66 W CUDA context on GDDR6 "
                     "(arXiv:2605.23918)", "2026-11"),
}


def get_power(gpu_name: str) -> GpuPower:
    power = GPU_POWER.get(gpu_name)
    if power is None:
        raise InputError(f"no power figures for GPU '{gpu_name}'; known: {', '.join(sorted(GPU_POWER))}.")
    return power


class StepPower:
    """Joules above idle of engine steps on one worker of ``hw`` (whole worker: all ``tp`` GPUs)."""

    def __init__(self, hw: HardwareSetup, power: GpuPower | None = None) -> None:
        self.hw = hw
        self.power = power or get_power(hw.gpu.name)
        roof = RooflineModel(hw)  # only for its work counts (experts touched); never for time
        self._roof = roof
        m, g, tp = hw.model, hw.gpu, hw.tp
        wdt = "fp8" if m.weight_dtype == "fp8" and g.has_native_fp8 else "bf16"
        # seconds at datasheet peak of the whole worker, per unit of work
        self._s_per_gemm_flop = 1.0 / (g.peak_flops(wdt) * tp)
        self._s_per_bf16_flop = 1.0 / (g.peak_flops("bf16") * tp)
        self._s_per_byte = 1.0 / (g.hbm_bytes_per_s * tp)
        self._flops_per_token = 2.0 * m.num_layers * m.linear_params_per_layer_active
        self._flops_per_logit_row = 2.0 * m.vocab_size * m.hidden_size
        self._flops_per_pair = 4.0 * m.num_layers * m.num_attention_heads * m.head_dim
        bpp = m.weight_bytes_per_param
        self._dense_bytes = float(m.num_layers * (m.attn_params_per_layer + m.router_params_per_layer) * bpp)
        self._expert_bytes = float(m.num_layers * m.expert_params * bpp)
        self._lm_head_bytes = float(m.vocab_size * m.hidden_size * 2)
        self._kv_bytes = float(hw.kv_bytes_per_token)
        self._dyn_w = (self.power.max_w - self.power.idle_w) * tp  # whole worker
        # a decode step's work time: fixed part per batch size (cached) + this per KV token read
        self._per_kv = self._flops_per_pair * self._s_per_bf16_flop / COMPUTE_SATURATION \
            + MEMORY_SHARE * self._kv_bytes * self._s_per_byte
        self._decode_fixed: dict[int, float] = {}
        self._dense_weights_s: float | None = None
        if not m.is_moe:  # a dense model streams all its weights in any step
            self._dense_weights_s = self._weights_s(1)
        self.idle_w = self.power.idle_w * tp

    def _weights_s(self, tokens: int) -> float:
        if self._dense_weights_s is not None:
            return self._dense_weights_s
        touched = self._roof.experts_touched(tokens)
        return (self._dense_bytes + touched * self._expert_bytes + self._lm_head_bytes) * self._s_per_byte

    def _gemm_s(self, tokens: int, rows: int) -> float:
        return tokens * self._flops_per_token * self._s_per_gemm_flop + \
            rows * self._flops_per_logit_row * self._s_per_bf16_flop

    def decode_j(self, n_decode: int, kv0: int, t0_ns: int, ends: I64 | Sequence[int]) -> float:
        """Decode-only steps ``i = 0..len(ends)-1`` (a stretch, or part of one) with ``n_decode`` requests
        reading ``kv0 + i · n_decode`` KV tokens, step i ending at ``ends[i]``, the first starting at ``t0_ns``.
        Called once per stretch slice the engine applies, so a one-step slice stays in plain Python, and ``ends``
        may be a list (made an array only when some step is clipped at max power)."""
        k = len(ends)
        if k == 0 or n_decode <= 0:
            return 0.0
        fixed = self._decode_fixed.get(n_decode)
        if fixed is None:
            fixed = self._gemm_s(n_decode, n_decode) / COMPUTE_SATURATION + MEMORY_SHARE * self._weights_s(n_decode)
            self._decode_fixed[n_decode] = fixed
        first_s = (int(ends[0]) - t0_ns) * 1e-9
        if k == 1:
            return self._dyn_w * min(first_s, fixed + self._per_kv * kv0)
        if fixed + self._per_kv * (kv0 + n_decode * (k - 1)) <= first_s:
            # no step is clipped at max power (step times never shrink along a stretch: perf models are monotone
            # in KV tokens, and the last step has the most work): the sum in closed form
            work = k * fixed + self._per_kv * (k * kv0 + n_decode * k * (k - 1) / 2)
            return self._dyn_w * min(work, (int(ends[-1]) - t0_ns) * 1e-9)
        ends = np.asarray(ends, dtype=np.int64)
        durs = ends.astype(np.float64)
        durs[1:] -= ends[:-1]
        durs[0] -= t0_ns
        durs *= 1e-9
        works = fixed + self._per_kv * (kv0 + n_decode * np.arange(k, dtype=np.float64))
        return float(self._dyn_w * np.minimum(durs, works).sum())

    def mixed_j(self, chunks: int, prefill_tokens: int, prefill_ctx: int, attention_pairs: int,
                n_decode: int, decode_kv: int, dur_ns: int) -> float:
        """One step with ``chunks`` prefill chunks (``prefill_tokens`` new tokens over ``prefill_ctx`` cached,
        ``attention_pairs`` query × key pairs) and ``n_decode`` decode requests reading ``decode_kv`` tokens."""
        tokens = prefill_tokens + n_decode
        compute = self._gemm_s(tokens, chunks + n_decode) + \
            (attention_pairs + decode_kv) * self._flops_per_pair * self._s_per_bf16_flop
        kv_read = prefill_ctx + prefill_tokens + decode_kv
        memory = self._weights_s(tokens) + kv_read * self._kv_bytes * self._s_per_byte
        work = compute / COMPUTE_SATURATION + MEMORY_SHARE * memory
        return self._dyn_w * min(dur_ns * 1e-9, work)

    def describe(self) -> dict[str, Any]:
        p = self.power
        return {"gpu": p.name, "max_w": p.max_w, "idle_w": p.idle_w, "source": p.source, "date": p.date}


def step_power(hw: HardwareSetup) -> StepPower | None:
    """The power model of a worker on ``hw``, or None for a GPU without power figures."""
    return StepPower(hw) if hw.gpu.name in GPU_POWER else None


def energy_summary(pools: dict[str, Pool], horizon_ns: int, output_tokens: int) -> dict[str, Any]:
    """``energy_kwh`` and ``joules_per_output_token`` of a run: idle power over every provisioned worker-second
    plus the step energy above idle the engines accumulated. None where a pool has no power model."""
    total_j = 0.0
    for pool in pools.values():
        meter = pool.spec.power
        if meter is None:
            return {"energy_kwh": None, "joules_per_output_token": None}
        gpus = pool.spec.gpus_per_worker
        idle_j = pool.worker_seconds(horizon_ns) * meter.power.idle_w * gpus
        # the meter counts the hardware's tp GPUs; a planner override of GPUs per worker scales it
        active_j = sum(w.engine.active_j for w in pool.workers) * gpus / meter.hw.tp
        total_j += idle_j + active_j
    return {"energy_kwh": total_j / 3.6e6,
            "joules_per_output_token": total_j / output_tokens if output_tokens else None}
