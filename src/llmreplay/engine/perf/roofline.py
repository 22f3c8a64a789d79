"""Roofline step-time model: analytic, from the model architecture and the GPU's datasheet.

One engine step is one forward pass over every token scheduled in it. Its time is the sum of

1. a fixed per-step overhead (scheduler, input preparation, kernel launches, sampling);
2. the linear layers (GEMMs) over all tokens of the step: the larger of their compute time and the time to
   stream their weights from HBM once — ``max(FLOPs / (peak · EFF_GEMM), bytes / (HBM · EFF_MEM))``. The
   ``lm_head`` runs only on the last token of each request in the step (vLLM computes logits for those
   rows only), and the embedding is a gather, so it is not streamed;
3. attention: each prefill chunk is compute-bound causal attention over its new tokens and the context
   already cached, at the BF16 peak × ``EFF_ATTN`` (attention runs in BF16 even with FP8 weights); decode
   attention streams the KV cache of every decoding request from HBM (max'ed with its FLOPs);
4. for TP > 1, two all-reduces of the hidden state per layer over the GPU link (NVLink on SXM parts).

Every term is divided over the ``tp`` GPUs of the worker. For MoE models FLOPs count only the routed
(active) experts, while the expert weights streamed per step are those of the experts touched by at least
one token: ``E · (1 − (1 − k/E)^tokens)`` per layer with uniform routing.

Calibration: the factors below were fitted (least squares on log ratios, then rounded) to NVIDIA
AIConfigurator's vLLM figures for H200 SXM, TP 1 — Llama-3.1-8B FP8 and Qwen3-8B BF16, prefill of one
request at ISL 1024/4096/8192 and decode steps at context 2048 with batch 1/16/64; ``docs/validation.md``
lists the twelve points and our ratios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from llmreplay.engine.perf.base import F64, I64, PerfModel
from llmreplay.engine.perf.hw import HardwareSetup

#: Fixed time of one engine step, seconds: vLLM's scheduler and input preparation, CUDA-graph replay or
#: kernel launches, sampling and detokenisation hand-off. AIConfigurator's batch-1 decode steps sit about
#: 1.5-1.9 ms above the weight-streaming time on H200 for both 8B models; the joint fit gives 1.6 ms.
STEP_OVERHEAD_S = 1.6e-3

#: Achieved fraction of the dense BF16 tensor-core peak in BF16 GEMMs (also used for the BF16 lm_head of
#: FP8 checkpoints). cuBLAS reaches 70-80 % of peak on H100/H200 for the M×4096×12288-class shapes of 8B
#: models at sustained clocks; fitted to the Qwen3-8B BF16 prefills: 0.70.
EFF_GEMM_BF16 = 0.70

#: Achieved fraction of the dense FP8 tensor-core peak in FP8 GEMMs (per-tensor scaled, CUTLASS). FP8 GEMMs
#: reach a lower share of their doubled peak (scaling epilogues, activation quantisation kernels, power
#: limits at FP8 rates); fitted to the Llama-3.1-8B FP8 prefills: 0.59.
EFF_GEMM_FP8 = 0.59

#: Achieved fraction of the dense BF16 peak in prefill attention (FlashAttention-3 class kernels reach
#: 55-75 % on Hopper for head dim 128; vLLM's FlashAttention-2/FlashInfer paths sit at the low end);
#: fitted to the growth of prefill time from ISL 1024 to 8192 for both models: 0.60.
EFF_ATTN = 0.60

#: Achieved fraction of datasheet HBM bandwidth when streaming weights and KV (large sequential reads
#: reach 85-95 % on HBM3/HBM3e; paged-KV decode attention a little less); fitted to the batch-1 to
#: batch-64 decode points: 0.90.
EFF_MEM = 0.90

#: Achieved fraction of the per-direction link bandwidth in a ring all-reduce (NCCL / vLLM custom
#: all-reduce reach ~70-80 % of NVLink bandwidth on large messages). Not calibrated (TP-1 references only).
EFF_LINK = 0.75

#: Fixed latency of one all-reduce call, seconds: AIConfigurator's systems files use 10 µs ``p2p_latency``
#: for NVLink nodes; small (decode-sized) all-reduces are latency-bound at about that.
ALLREDUCE_LATENCY_S = 10e-6


@dataclass(frozen=True)
class RooflineParams:
    """The roofline's tunable factors; defaults are the module constants. Override any of them from the
    ``perf_model`` object, e.g. ``{"kind": "roofline", "step_overhead_ms": 2.5}``."""

    step_overhead_ms: float = STEP_OVERHEAD_S * 1e3
    eff_gemm_bf16: float = EFF_GEMM_BF16
    eff_gemm_fp8: float = EFF_GEMM_FP8
    eff_attn: float = EFF_ATTN
    eff_mem: float = EFF_MEM
    eff_link: float = EFF_LINK
    allreduce_latency_us: float = ALLREDUCE_LATENCY_S * 1e6

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def with_overrides(self, overrides: dict[str, Any]) -> RooflineParams:
        return replace(self, **overrides)


class RooflineModel(PerfModel):
    """Analytic step time from a :class:`HardwareSetup` (see the module docstring for the terms)."""

    kind = "roofline"

    def __init__(self, hw: HardwareSetup, params: RooflineParams | None = None) -> None:
        self.hw = hw
        self.params = params or RooflineParams()
        p, m, g, tp = self.params, hw.model, hw.gpu, hw.tp
        self._overhead = p.step_overhead_ms * 1e-3
        self._hbm = g.hbm_bytes_per_s * p.eff_mem
        # FP8 weights run FP8 GEMMs where the GPU has FP8 tensor cores; elsewhere (A100) they are
        # dequantised to BF16 in the GEMM (weight-only FP8) and compute like BF16 while still streaming
        # one byte per weight
        wdt = "fp8" if m.weight_dtype == "fp8" and g.has_native_fp8 else "bf16"
        eff_w = p.eff_gemm_fp8 if wdt == "fp8" else p.eff_gemm_bf16
        # FLOP/s of the decoder GEMMs (weight dtype) and of BF16 work (lm_head, attention), whole worker
        self._gemm_dtype = wdt
        self._gemm_flops = g.peak_flops(wdt) * eff_w * tp
        self._bf16_flops = g.peak_flops("bf16") * p.eff_gemm_bf16 * tp
        self._attn_flops = g.peak_flops("bf16") * p.eff_attn * tp
        # per-token GEMM FLOPs through the decoder layers (active experts only) and per-logits-row FLOPs
        self._flops_per_token = 2.0 * m.num_layers * m.linear_params_per_layer_active
        self._flops_per_logit_row = 2.0 * m.vocab_size * m.hidden_size
        # weights streamed per step (whole worker): dense part, one expert, lm_head (BF16; tied = embedding)
        bpp = m.weight_bytes_per_param
        self._dense_bytes = float(m.num_layers * (m.attn_params_per_layer + m.router_params_per_layer) * bpp)
        self._expert_bytes = float(m.num_layers * m.expert_params * bpp)
        self._lm_head_bytes = float(m.vocab_size * m.hidden_size * 2)
        # attention: FLOPs per (query token × key token) pair over all layers (QKᵀ and PV, 2 FLOPs per MAC)
        self._attn_flops_per_pair = 4.0 * m.num_layers * m.num_attention_heads * m.head_dim
        self._kv_bytes_per_token = float(hw.kv_bytes_per_token)
        # TP all-reduce: two per layer of the BF16 hidden state
        self._n_allreduce = 2 * m.num_layers if tp > 1 else 0
        ring = 2.0 * (tp - 1) / tp
        self._ar_s_per_token = ring * m.hidden_size * 2 / (g.link_bytes_per_s * p.eff_link) if tp > 1 else 0.0
        self._ar_latency = p.allreduce_latency_us * 1e-6
        self._decode_rate = self._decode_attention_s_per_token()
        #: batch size -> the part of a decode-only step that does not depend on the KV tokens read
        self._decode_fixed: dict[int, float] = {}

    # ---- the terms ----------------------------------------------------------------------------------------
    def experts_touched(self, tokens: int) -> float:
        """Expected distinct experts per layer hit by ``tokens`` tokens routing top-k of E uniformly
        (1 for a dense model with any tokens)."""
        m = self.hw.model
        if tokens <= 0:
            return 0.0
        if not m.is_moe:
            return 1.0
        e, k = m.num_experts, m.num_experts_per_tok
        return float(e * (1.0 - (1.0 - k / e) ** tokens))

    def gemm_s(self, tokens: int, logit_rows: int) -> float:
        """Linear layers over ``tokens`` tokens plus the lm_head over ``logit_rows`` rows."""
        if tokens <= 0:
            return 0.0
        compute = tokens * self._flops_per_token / self._gemm_flops \
            + logit_rows * self._flops_per_logit_row / self._bf16_flops
        weights = self._dense_bytes + self.experts_touched(tokens) * self._expert_bytes + self._lm_head_bytes
        memory = weights / (self._hbm * self.hw.tp)
        return max(compute, memory)

    def prefill_attention_s(self, new: int, ctx: int) -> float:
        """Causal attention of a chunk of ``new`` tokens over ``ctx`` cached tokens and itself."""
        if new <= 0:
            return 0.0
        pairs = new * (ctx + (new + 1) / 2.0)
        compute = pairs * self._attn_flops_per_pair / self._attn_flops
        memory = (ctx + new) * self._kv_bytes_per_token / (self._hbm * self.hw.tp)
        return max(compute, memory)

    def decode_attention_s(self, kv_tokens: F64) -> F64:
        """Decode attention reading ``kv_tokens`` cached tokens in total (vectorised)."""
        memory = kv_tokens * (self._kv_bytes_per_token / (self._hbm * self.hw.tp))
        compute = kv_tokens * (self._attn_flops_per_pair / self._attn_flops)
        return np.maximum(memory, compute)

    def _decode_attention_s_per_token(self) -> float:
        """Seconds of decode attention per KV token read: the larger of the memory and the compute rate, so that
        ``kv · rate`` equals :meth:`decode_attention_s` bit for bit (kv ≥ 0: a correctly rounded product is
        monotone in each factor, so the larger factor gives the larger of the two rounded products)."""
        return max(self._kv_bytes_per_token / (self._hbm * self.hw.tp), self._attn_flops_per_pair / self._attn_flops)

    def allreduce_s(self, tokens: int) -> float:
        if self._n_allreduce == 0 or tokens <= 0:
            return 0.0
        return self._n_allreduce * (self._ar_latency + tokens * self._ar_s_per_token)

    # ---- PerfModel ----------------------------------------------------------------------------------------
    def step_s(
        self,
        prefill_new: Sequence[int],
        prefill_ctx: Sequence[int],
        n_decode: int,
        decode_kv_tokens: int,
    ) -> float:
        # one pass over the chunks that have new tokens (as base.prefill_chunks): this runs for every mixed step
        tokens = 0
        attention: list[float] = []
        for n, c in zip(prefill_new, prefill_ctx, strict=True):
            if n > 0:
                tokens += int(n)
                attention.append(self.prefill_attention_s(int(n), int(c)))
        if not attention:
            return self.decode_step_s(n_decode, decode_kv_tokens)
        tokens += n_decode
        fixed = self._overhead + self.gemm_s(tokens, len(attention) + n_decode) + self.allreduce_s(tokens)
        fixed += sum(attention)
        if n_decode > 0:  # decode_attention_s of one value, in Python floats (the same IEEE operations)
            fixed += float(decode_kv_tokens) * self._decode_rate
        return float(fixed)

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        fixed = self._decode_fixed.get(n_decode)
        if fixed is None:  # a pure function of the batch size: computed once per size
            fixed = self._overhead + self.gemm_s(n_decode, n_decode) + self.allreduce_s(n_decode)
            self._decode_fixed[n_decode] = fixed
        # decode_attention_s in one product (the int64 tokens are converted to float64 by the multiply), plus
        # the fixed part in place: two array operations instead of five, the same numbers
        out: F64 = np.multiply(decode_kv_tokens, self._decode_rate, dtype=np.float64)
        out += fixed
        return out

    def describe(self) -> str:
        return f"roofline ({self._gemm_dtype} GEMMs)"
