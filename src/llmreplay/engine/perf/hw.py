"""What one worker runs on: a GPU type, a model, a tensor-parallel size and a KV dtype — and the KV capacity
that follows from them, derived the way vLLM sizes its cache at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from llmreplay.engine.config import EngineArgs
from llmreplay.engine.perf.hardware import GiB, GPUSpec, get_gpu
from llmreplay.engine.perf.models import ModelSpec, get_model, kv_dtype_bytes, kv_dtype_name
from llmreplay.errors import InputError

#: Activation peak per batched token per hidden unit, in bytes, reserved on each GPU. vLLM sizes its KV
#: cache after a profiling forward pass over ``max_num_batched_tokens`` dummy tokens and subtracts that
#: pass's peak memory. For a Llama-style layer the live tensors at the peak (residual, normed input, QKV,
#: attention output, the fused gate/up output at 2 × 3.5 × hidden and the SiLU·up product) are about
#: 14-16 hidden-sized BF16 rows per token, i.e. ~32 bytes × hidden: 1 GiB for 8192 tokens at hidden 4096,
#: in line with the ~1 GiB peak vLLM logs for an 8B model at its default budget.
ACTIVATION_BYTES_PER_TOKEN_HIDDEN = 32

#: Fixed per-GPU reserve (bytes) for what the profiling pass does not see as activations: CUDA graphs
#: (vLLM logs 0.5-1 GiB for captured graphs of 8B-70B models), the sampler's logits buffers, cuBLAS/NCCL
#: workspaces and other non-torch allocations. 2 GiB lands the default H200 / Llama-3.1-8B BF16 setup at
#: ~109 GiB (~117 GB) of KV, the figure vLLM reports for that setup at utilisation 0.9.
RUNTIME_RESERVE_BYTES = 2 * GiB


@dataclass(frozen=True)
class HardwareSetup:
    """One worker: ``tp`` GPUs of type ``gpu`` serving ``model`` with a ``kv_dtype`` KV cache."""

    gpu: GPUSpec
    model: ModelSpec
    tp: int
    kv_dtype: str

    def __post_init__(self) -> None:
        self.model.check_tp(self.tp)
        kv_dtype_bytes(self.kv_dtype)  # validates the name

    @property
    def kv_bytes_per_token_per_rank(self) -> int:
        """KV bytes one token occupies on each TP rank (KV heads split, or replicated if TP exceeds them)."""
        m = self.model
        return m.num_layers * 2 * m.kv_heads_per_rank(self.tp) * m.head_dim * kv_dtype_bytes(self.kv_dtype)

    @property
    def kv_bytes_per_token(self) -> int:
        """KV bytes one token occupies in the whole worker (summed over its TP ranks)."""
        return self.kv_bytes_per_token_per_rank * self.tp

    @property
    def weight_bytes_per_rank(self) -> float:
        """Weights each GPU holds: vLLM shards every linear layer, the embedding and the lm_head over TP."""
        return self.model.weight_bytes / self.tp

    def describe(self) -> str:
        """E.g. ``H200 SXM ×1 (TP1) · meta-llama/Llama-3.1-8B-Instruct (bf16 weights, bf16 KV)``."""
        return (
            f"{self.gpu.label} ×{self.tp} (TP{self.tp}) · {self.model.name} "
            f"({self.model.weight_dtype} weights, {kv_dtype_name(self.kv_dtype)} KV)"
        )

    def activation_reserve_bytes(self, max_num_batched_tokens: int) -> float:
        """Per-GPU memory held back for activations and the runtime (see the two module constants)."""
        act = max_num_batched_tokens * self.model.hidden_size * ACTIVATION_BYTES_PER_TOKEN_HIDDEN
        return float(act + RUNTIME_RESERVE_BYTES)

    def kv_cache_bytes_per_rank(self, gpu_memory_utilization: float, max_num_batched_tokens: int) -> float:
        """Bytes each GPU gives to the KV cache: memory × utilisation − weights − activation/runtime reserve.
        Raises :class:`InputError` (with the numbers) when the weights or the reserve leave no room."""
        budget = self.gpu.memory_bytes * gpu_memory_utilization
        weights = self.weight_bytes_per_rank
        where = f"{self.model.name} on {self.gpu.label} at TP{self.tp}"
        if weights >= budget:
            raise InputError(
                f"{where} does not fit: weights need {weights / GiB:.1f} GiB per GPU but only "
                f"{budget / GiB:.1f} GiB are usable ({self.gpu.memory_bytes / GiB:.0f} GiB × "
                f"gpu_memory_utilization {gpu_memory_utilization:g}). Use a larger tp, a bigger GPU or an "
                "FP8 checkpoint."
            )
        reserve = self.activation_reserve_bytes(max_num_batched_tokens)
        kv = budget - weights - reserve
        if kv < self.kv_bytes_per_token_per_rank:
            raise InputError(
                f"{where} leaves no room for the KV cache: {budget / GiB:.1f} GiB usable − "
                f"{weights / GiB:.1f} GiB weights − {reserve / GiB:.1f} GiB activation/runtime reserve "
                f"(max_num_batched_tokens {max_num_batched_tokens}) = {kv / GiB:.2f} GiB. Use a larger tp, "
                "a higher gpu_memory_utilization or a smaller max_num_batched_tokens."
            )
        return kv

    def derive_num_gpu_blocks(
        self, block_size: int, gpu_memory_utilization: float, max_num_batched_tokens: int
    ) -> int:
        """KV blocks per worker, as vLLM derives them: on each of the ``tp`` GPUs, memory × utilisation −
        weights/tp − activation reserve, divided by the per-rank bytes of one block (every rank holds its
        share of every block, so the per-rank count is the worker's count)."""
        if block_size <= 0:
            raise InputError(f"block_size must be > 0 (got {block_size}).")
        kv = self.kv_cache_bytes_per_rank(gpu_memory_utilization, max_num_batched_tokens)
        blocks = int(kv // (self.kv_bytes_per_token_per_rank * block_size))
        if blocks < 1:
            raise InputError(
                f"{self.model.name} on {self.gpu.label} at TP{self.tp}: {kv / GiB:.2f} GiB of KV cache holds "
                f"no block of {block_size} tokens."
            )
        return blocks


def resolve_hardware(args: EngineArgs) -> HardwareSetup:
    """The worker hardware named by engine args (defaults: H200 SXM, Llama-3.1-8B-Instruct BF16, TP 1)."""
    return HardwareSetup(
        gpu=get_gpu(args.gpu_name),
        model=get_model(args.model_name),
        tp=args.tp_size,
        kv_dtype=args.kv_cache_dtype,
    )
