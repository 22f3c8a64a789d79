"""Constant step time: every step takes ``step_ms`` (plus, optionally, a cost per new prefill token).

For tests and queueing checks: with ``prefill_ms_per_token`` 0 an engine is a deterministic server (the D
of an M/D/1 queue), whatever its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmreplay.engine.perf.base import F64, I64, PerfModel


class ConstantModel(PerfModel):
    """``step_ms`` per step, plus ``prefill_ms_per_token`` per new prefill token in the step."""

    kind = "constant"

    def __init__(self, step_ms: float, prefill_ms_per_token: float = 0.0) -> None:
        if not step_ms > 0:
            raise ValueError(f"step_ms must be > 0 (got {step_ms})")
        if not prefill_ms_per_token >= 0:
            raise ValueError(f"prefill_ms_per_token must be >= 0 (got {prefill_ms_per_token})")
        self.step_ms = float(step_ms)
        self.prefill_ms_per_token = float(prefill_ms_per_token)

    def step_s(
        self,
        prefill_new: Sequence[int],
        prefill_ctx: Sequence[int],
        n_decode: int,
        decode_kv_tokens: int,
    ) -> float:
        tokens = max(int(sum(prefill_new)), 0)
        return (self.step_ms + self.prefill_ms_per_token * tokens) * 1e-3

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        out: F64 = np.full(np.shape(decode_kv_tokens)[0], self.step_ms * 1e-3, dtype=np.float64)
        return out

    def describe(self) -> str:
        extra = f" + {self.prefill_ms_per_token:g} ms per prefill token" if self.prefill_ms_per_token else ""
        return f"constant ({self.step_ms:g} ms per step{extra})"
