"""The perf-model interface: wall time of one engine step as a function of that step's batch.

Every engine step is one forward pass over a mixed batch: prefill chunks (each ``new`` tokens attending to
``ctx`` tokens already in KV) plus ``n_decode`` decode requests reading ``decode_kv_tokens`` KV tokens in
total. The engine calls :meth:`PerfModel.decode_steps_s` for every step with no prefill chunk (vectorised,
so a fast-forwarded stretch of decode steps is one call) and :meth:`PerfModel.step_s` for a step with at
least one prefill chunk. Both the fast-forward path and the step-by-step reference path call the same
method for the same kind of step, so their timestamps agree exactly.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.errors import InputError
from llmreplay.units import NS_PER_S

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
StepFn = Callable[["PerfModel", Sequence[int], Sequence[int], int, int], float]
DecodeFn = Callable[["PerfModel", int, I64], F64]


#: the longest step time a perf model may return, in seconds. A real forward pass takes milliseconds to
#: minutes; a day means the model's numbers are off (``step_ms: 1e300``, a 10^30-wide model), and keeping
#: steps below it keeps every sum of step times far inside the engine's int64 nanoseconds.
MAX_STEP_S = 86_400.0
#: the smallest engine ``speedup_ratio`` that keeps a ``MAX_STEP_S`` step representable: int64 ns hold
#: 2^62 ns with room for sums
MIN_SPEEDUP_RATIO = MAX_STEP_S * NS_PER_S / 2**62


class PerfModel(ABC):
    """Step-time model. Implementations must be pure (no hidden state), deterministic, return seconds > 0
    for any non-empty batch, and be monotone non-decreasing in tokens, batch size and KV tokens.

    Every subclass's ``step_s`` and ``decode_steps_s`` are wrapped (``__init_subclass__``) in a guard that
    turns a step time that is not finite, not positive or above :data:`MAX_STEP_S` into an
    :class:`InputError` naming the model and the step, rather than a wrapped-around int64 or a 0 ms step
    (``speedup_ratio: 1e-300``, a table row of ``step_ms: 1e300``). Checking at this layer keeps the
    engine's loop free of it; it costs about a microsecond per call."""

    #: short name shown in the run header and the report (e.g. ``roofline``)
    kind: str = "abstract"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "step_s" in cls.__dict__:
            setattr(cls, "step_s", _guard_step(cls.__dict__["step_s"]))  # noqa: B010 (mypy forbids assigning a method)
        if "decode_steps_s" in cls.__dict__:
            setattr(cls, "decode_steps_s", _guard_decode_steps(cls.__dict__["decode_steps_s"]))  # noqa: B010

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


class StepTimeError(InputError):
    """A perf model returned a step time the engine cannot use (exit 2: the model's inputs are wrong)."""


def _bad_step(model: PerfModel, shape: str, seconds: float) -> StepTimeError:
    return StepTimeError(
        f"perf model {model.describe()}: a step of {shape} takes {seconds!r} s; a step must take more than 0 "
        f"and at most {MAX_STEP_S:g} s (one day). Check the perf model's parameters (and the engine's "
        "speedup_ratio, model config or measured-steps file they come from).")


def _guard_step(fn: StepFn) -> StepFn:
    @functools.wraps(fn)
    def step_s(self: PerfModel, prefill_new: Sequence[int], prefill_ctx: Sequence[int], n_decode: int,
               decode_kv_tokens: int) -> float:
        s = fn(self, prefill_new, prefill_ctx, n_decode, decode_kv_tokens)
        if not 0.0 < s <= MAX_STEP_S:  # also catches NaN
            chunks = prefill_chunks(prefill_new, prefill_ctx)
            shown = ", ".join(f"{n} new + {c} cached" for n, c in chunks[:4]) + (", ..." if len(chunks) > 4 else "")
            raise _bad_step(self, f"prefill chunks [{shown}] with {n_decode} decode requests reading "
                                  f"{decode_kv_tokens} KV tokens", float(s))
        return s

    return step_s


def _all_valid(out: F64) -> bool:
    """Every step time in (0, MAX_STEP_S] (a NaN fails: the reductions propagate it). The ufuncs' own ``reduce``,
    not ``out.min()``: the same kernel without numpy's Python-level wrappers, about twice as cheap on the short
    arrays of a stretch."""
    return bool(_min_of(out) > 0.0 and _max_of(out) <= MAX_STEP_S)


_min_of = np.minimum.reduce
_max_of = np.maximum.reduce


def _guard_decode_steps(fn: DecodeFn) -> DecodeFn:
    @functools.wraps(fn)
    def decode_steps_s(self: PerfModel, n_decode: int, decode_kv_tokens: I64) -> F64:
        out = fn(self, n_decode, decode_kv_tokens)
        if out.shape[0] and not _all_valid(out):
            bad = np.flatnonzero(~((out > 0.0) & (out <= MAX_STEP_S)))
            k = int(bad[0]) if bad.size else 0
            raise _bad_step(self, f"{n_decode} decode requests reading {int(decode_kv_tokens[k])} KV tokens "
                                  "(a decode-only step)", float(out[k]))
        return out

    return decode_steps_s


def prefill_chunks(prefill_new: Sequence[int], prefill_ctx: Sequence[int]) -> list[tuple[int, int]]:
    """(new tokens, context) of each prefill chunk that has new tokens."""
    return [(int(n), int(c)) for n, c in zip(prefill_new, prefill_ctx, strict=True) if n > 0]


def _check_speedup(speedup_ratio: float) -> None:
    if not speedup_ratio >= MIN_SPEEDUP_RATIO:  # with steps <= MAX_STEP_S, the one way past int64 ns
        raise InputError(f"engine arg speedup_ratio {speedup_ratio!r} would stretch a step beyond the simulator's "
                         f"clock (int64 ns); it must be >= {MIN_SPEEDUP_RATIO:.2g}.")


def to_ns(seconds: F64, speedup_ratio: float) -> I64:
    """Seconds → integer nanoseconds (>= 1) after dividing by the engine's ``speedup_ratio``. All engine
    time is integer ns, so a fast-forwarded sum equals the step-by-step sum bit for bit."""
    _check_speedup(speedup_ratio)
    scaled = np.multiply(seconds, NS_PER_S / speedup_ratio, dtype=np.float64)
    ns = np.rint(scaled, out=scaled).astype(np.int64)
    return np.maximum(ns, 1, out=ns)


def seconds_to_ns(seconds: float, speedup_ratio: float) -> int:
    """:func:`to_ns` of one value without numpy's per-call cost, bit for bit the same: the product is the
    same IEEE double and Python's ``round`` rounds half to even, as ``np.rint`` does."""
    _check_speedup(speedup_ratio)
    ns = round(float(seconds) * (NS_PER_S / speedup_ratio))
    return ns if ns > 1 else 1
