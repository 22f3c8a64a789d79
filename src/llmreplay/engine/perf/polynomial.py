"""Closed-form step time: Dynamo mocker's prefill polynomial plus a decode plane in batch size and KV read.

Prefill (Dynamo's default mocker fit, on the step's new prefill tokens ``T`` summed over its chunks; the
cached context of a chunk is ignored, as in Dynamo)::

    prefill_ms(T) = a·T² + b·T + c      (a, b, c = 4.209989e-07, 1.518344e-02, 1.650142e+01; 0 when T = 0)

Decode. Dynamo's mocker times a decode pass from the KV *utilisation* of the whole cache alone, so a
half-full cache costs the same whether it serves one request or two hundred, and the same load costs
differently on a bigger cache — a known flaw. Here a decode step depends on what it does::

    decode_ms(n, K) = c0 + c1·n + c2·K   (n decoding requests reading K KV tokens in total)

The defaults ``c0, c1, c2 = 5.0, 0.007, 3.0e-5`` are a least-squares fit to the roofline model's decode
steps for the default setup (H200 SXM, Llama-3.1-8B-Instruct BF16, TP 1) over batch 1-256 and context
128-8192: ~5 ms to stream 16 GB of weights plus the per-step overhead, 7 µs per request (lm_head and
per-request work), 30 ns per KV token read (128 KiB per token at ~4.3 TB/s).

A mixed step (prefill chunks and decoding requests in one pass) takes ``prefill_ms(T) + decode_ms(n, K)``
— the sum of both parts, like Dynamo's mocker, which adds a decode pass to every prefill pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llmreplay.engine.perf.base import F64, I64, PerfModel

#: Dynamo mocker's default prefill fit, ms = a·T² + b·T + c over new prefill tokens T
DYNAMO_PREFILL: tuple[float, float, float] = (4.209989e-07, 1.518344e-02, 1.650142e01)

#: decode ms = c0 + c1·n_decode + c2·kv_tokens, fitted to the roofline's H200 / Llama-3.1-8B BF16 decode
DEFAULT_DECODE: tuple[float, float, float] = (5.0, 0.007, 3.0e-5)


class PolynomialModel(PerfModel):
    """Prefill polynomial in new tokens plus a linear decode term in batch size and KV tokens (all ms)."""

    kind = "polynomial"

    def __init__(
        self,
        prefill: Sequence[float] = DYNAMO_PREFILL,
        decode: Sequence[float] = DEFAULT_DECODE,
    ) -> None:
        a, b, c = (float(x) for x in prefill)
        c0, c1, c2 = (float(x) for x in decode)
        self.prefill = (a, b, c)
        self.decode = (c0, c1, c2)

    def prefill_ms(self, tokens: int) -> float:
        if tokens <= 0:
            return 0.0
        a, b, c = self.prefill
        return a * tokens * tokens + b * tokens + c

    def step_s(
        self,
        prefill_new: Sequence[int],
        prefill_ctx: Sequence[int],
        n_decode: int,
        decode_kv_tokens: int,
    ) -> float:
        dec = self.decode_step_s(n_decode, decode_kv_tokens)
        tokens = int(sum(prefill_new))
        if tokens <= 0:
            return dec
        return self.prefill_ms(tokens) * 1e-3 + dec

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        c0, c1, c2 = self.decode
        kv = np.asarray(decode_kv_tokens, dtype=np.float64)
        out: F64 = (c0 + c1 * n_decode + c2 * kv) * 1e-3
        return out

    def describe(self) -> str:
        a, b, c = self.prefill
        c0, c1, c2 = self.decode
        return (f"polynomial (prefill ms = {a:.4g}·T² + {b:.4g}·T + {c:.4g}; "
                f"decode ms = {c0:.4g} + {c1:.4g}·n + {c2:.4g}·kv)")
