"""GPU specifications: one source of truth per GPU, each figure cited.

Names follow NVIDIA AIConfigurator's system names (``h200_sxm``, ...). Conventions:

- ``dense_tflops`` are *dense* tensor-core peaks (no 2:4 sparsity). NVIDIA's datasheets print the sparse
  figure with an asterisk; the dense one is half of it.
- ``memory_bytes`` is the datasheet capacity read as GiB (AIConfigurator's convention for its system files,
  e.g. ``mem_capacity: 85899345920 # 80GiB`` for H100), which matches what ``nvidia-smi`` reports within
  about 2 %; L40S uses the measured 46068 MiB that AIConfigurator ships.
- ``hbm_bytes_per_s`` is the datasheet memory bandwidth in bytes/s (decimal TB/s).
- ``link_bytes_per_s`` is the per-GPU, per-direction GPU-to-GPU bandwidth used for tensor-parallel
  all-reduce (NVLink where the part has it, PCIe otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmreplay.errors import InputError

GiB = 1024**3
MiB = 1024**2


@dataclass(frozen=True)
class GPUSpec:
    """One GPU model. ``dense_tflops`` maps a weight dtype (``"bf16"``, ``"fp8"``) to its dense tensor-core
    peak in TFLOPS."""

    name: str
    memory_bytes: int
    hbm_bytes_per_s: float
    dense_tflops: dict[str, float] = field(hash=False)
    source: str
    #: per-GPU, per-direction bandwidth of the GPU-to-GPU link used by TP all-reduce (bytes/s)
    link_bytes_per_s: float = 450e9

    @property
    def label(self) -> str:
        """Human name for headers: ``h200_sxm`` → ``H200 SXM``."""
        return self.name.upper().replace("_", " ")

    @property
    def has_native_fp8(self) -> bool:
        """Whether FP8 GEMMs run on FP8 tensor cores (faster than BF16), not dequantised to BF16."""
        return self.dense_tflops.get("fp8", 0.0) > self.dense_tflops.get("bf16", 0.0)

    def peak_flops(self, dtype: str) -> float:
        """Dense peak in FLOP/s for ``dtype`` (``bf16`` or ``fp8``)."""
        try:
            return self.dense_tflops[dtype] * 1e12
        except KeyError:
            raise InputError(
                f"GPU {self.name} has no peak listed for dtype '{dtype}'; "
                f"known: {', '.join(self.dense_tflops)}"
            ) from None


GPUS: dict[str, GPUSpec] = {
    # A100 SXM4 80GB: 80 GB HBM2e, 2,039 GB/s, BF16 tensor 312 TFLOPS dense (624 with sparsity); NVLink 3
    # 600 GB/s bidirectional = 300 GB/s per direction. Ampere has no FP8 tensor cores: FP8 checkpoints run
    # as weight-only FP8 (vLLM's Marlin kernels dequantise to BF16), so the "fp8" peak is the BF16 one.
    "a100_sxm": GPUSpec(
        name="a100_sxm",
        memory_bytes=80 * GiB,
        hbm_bytes_per_s=2.039e12,
        dense_tflops={"bf16": 312.0, "fp8": 312.0},
        source="NVIDIA A100 Tensor Core GPU datasheet (A100 80GB SXM column); "
        "fp8 = bf16 (no FP8 tensor cores)",
        link_bytes_per_s=300e9,
    ),
    # H100 SXM5 80GB: 80 GB HBM3, 3.35 TB/s, BF16 989 / FP8 1,979 TFLOPS dense (1,979 / 3,958 sparse);
    # NVLink 4 900 GB/s bidirectional = 450 GB/s per direction.
    "h100_sxm": GPUSpec(
        name="h100_sxm",
        memory_bytes=80 * GiB,
        hbm_bytes_per_s=3.35e12,
        dense_tflops={"bf16": 989.0, "fp8": 1979.0},
        source="NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column), dense = sparse / 2",
        link_bytes_per_s=450e9,
    ),
    # H200 SXM 141GB: 141 GB HBM3e, 4.8 TB/s, same Hopper compute as H100 SXM: BF16 989 / FP8 1,979 TFLOPS
    # dense; NVLink 4 900 GB/s bidirectional = 450 GB/s per direction.
    "h200_sxm": GPUSpec(
        name="h200_sxm",
        memory_bytes=141 * GiB,
        hbm_bytes_per_s=4.8e12,
        dense_tflops={"bf16": 989.0, "fp8": 1979.0},
        source="NVIDIA H200 Tensor Core GPU datasheet (H200 SXM column), dense = sparse / 2",
        link_bytes_per_s=450e9,
    ),
    # B200 (HGX B200, per GPU): 180 GB HBM3e, 8 TB/s, BF16 2.25 / FP8 4.5 PFLOPS dense (4.5 / 9 sparse);
    # NVLink 5 1.8 TB/s bidirectional = 900 GB/s per direction.
    "b200_sxm": GPUSpec(
        name="b200_sxm",
        memory_bytes=180 * GiB,
        hbm_bytes_per_s=8.0e12,
        dense_tflops={"bf16": 2250.0, "fp8": 4500.0},
        source="NVIDIA HGX B200 / DGX B200 datasheet (per-GPU figures), dense = sparse / 2",
        link_bytes_per_s=900e9,
    ),
    # L40S: 48 GB GDDR6, 864 GB/s, BF16 362.05 / FP8 733 TFLOPS dense (733 / 1,466 sparse); no NVLink, so TP
    # all-reduce runs over PCIe Gen4 x16 at 32 GB/s per direction. Memory: 46068 MiB as AIConfigurator's
    # l40s.yaml (the usable capacity with ECC on).
    "l40s": GPUSpec(
        name="l40s",
        memory_bytes=46068 * MiB,
        hbm_bytes_per_s=864e9,
        dense_tflops={"bf16": 362.05, "fp8": 733.0},
        source="NVIDIA L40S GPU datasheet, dense = sparse / 2; "
        "memory 46068 MiB as in AIConfigurator l40s.yaml",
        link_bytes_per_s=32e9,
    ),
}


def get_gpu(name: str) -> GPUSpec:
    """The spec of GPU ``name``: an AIConfigurator system name, case-insensitive, ``-`` for ``_`` allowed."""
    key = name.strip().lower().replace("-", "_")
    spec = GPUS.get(key)
    if spec is None:
        raise InputError(f"unknown GPU '{name}'. Known GPUs: {', '.join(sorted(GPUS))}.")
    return spec
