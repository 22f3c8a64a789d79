"""The perf-model interface: wall time of one engine step as a function of that step's batch.

Every engine step is one forward pass over a mixed batch: prefill chunks (each ``new`` tokens attending to
``ctx`` tokens already in KV) plus ``n_decode`` decode requests reading ``decode_kv_tokens`` KV tokens in
total. The engine calls :meth:`PerfModel.decode_steps_s` for every step with no prefill chunk (vectorised,
so a fast-forwarded stretch of decode steps is one call) and :meth:`PerfModel.step_s` for a step with at
least one prefill chunk. Both the fast-forward path and the step-by-step reference path call the same
method for the same kind of step, so their timestamps agree exactly.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


class PerfModel(ABC):
    """Step-time model. Implementations must be pure (no hidden state), deterministic, return seconds > 0
    for any non-empty batch, and be monotone non-decreasing in tokens, batch size and KV tokens."""

    #: short name shown in the run header and the report (e.g. ``roofline``)
    kind: str = "abstract"

    @abstractmethod
    def step_s(
        self,
        prefill_new: Sequence[int],
        prefill_ctx: Sequence[int],
        n_decode: int,
        decode_kv_tokens: int,
    ) -> float:
        """Seconds for one step holding prefill chunks (``prefill_new[i]`` new tokens whose attention also
        covers ``prefill_ctx[i]`` tokens already cached) and ``n_decode`` decode requests whose contexts sum
        to ``decode_kv_tokens``."""

    @abstractmethod
    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        """Seconds for each of several decode-only steps with ``n_decode`` requests, where step k reads
        ``decode_kv_tokens[k]`` KV tokens in total. Vectorised: one call per fast-forwarded stretch."""

    def describe(self) -> str:
        """One line for the run header (what times the steps)."""
        return self.kind

    def decode_step_s(self, n_decode: int, decode_kv_tokens: int) -> float:
        """One decode-only step, through the vectorised path, so a ``step_s`` without prefill agrees with
        ``decode_steps_s`` to the last bit."""
        return float(self.decode_steps_s(n_decode, np.asarray([decode_kv_tokens], dtype=np.int64))[0])


def prefill_chunks(prefill_new: Sequence[int], prefill_ctx: Sequence[int]) -> list[tuple[int, int]]:
    """(new tokens, context) of each prefill chunk that has new tokens."""
    return [(int(n), int(c)) for n, c in zip(prefill_new, prefill_ctx, strict=True) if n > 0]


def to_ns(seconds: F64, speedup_ratio: float) -> I64:
    """Seconds → integer nanoseconds (>= 1) after dividing by the engine's ``speedup_ratio``. All engine
    time is integer ns, so a fast-forwarded sum equals the step-by-step sum bit for bit."""
    ns = np.rint(np.asarray(seconds, dtype=np.float64) * (1e9 / speedup_ratio)).astype(np.int64)
    return np.maximum(ns, 1)


def seconds_to_ns(seconds: float, speedup_ratio: float) -> int:
    """:func:`to_ns` of one value without numpy's per-call cost, bit for bit the same: the product is the
    same IEEE double and Python's ``round`` rounds half to even, as ``np.rint`` does."""
    ns = round(float(seconds) * (1e9 / speedup_ratio))
    return ns if ns > 1 else 1
