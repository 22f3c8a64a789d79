"""Shared fixtures: tiny perf models, trace builders and a one-call replay, for behavioural tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llmreplay.cluster.pool import Pool, PoolSpec
from llmreplay.cluster.router import RouterConfig, make_router
from llmreplay.engine.config import EngineArgs
from llmreplay.engine.perf.base import F64, I64, PerfModel
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.sim.replay import Replay, ReplayOptions, ReplayResult
from llmreplay.trace.model import Trace

SHARED_TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces"


class FixedStep(PerfModel):
    """Every step takes ``step_s`` seconds: the D of an M/D/1 queue."""

    kind = "fixed-test"

    def __init__(self, step_s: float) -> None:
        self.step = step_s

    def step_s(self, prefill_new: Sequence[int], prefill_ctx: Sequence[int], n_decode: int,
               decode_kv_tokens: int) -> float:
        return self.step

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        return np.full(decode_kv_tokens.shape[0], self.step)


class LinearStep(PerfModel):
    """Step time grows with prefill tokens, batch and KV read: enough structure to catch timing bugs."""

    kind = "linear-test"

    def step_s(self, prefill_new: Sequence[int], prefill_ctx: Sequence[int], n_decode: int,
               decode_kv_tokens: int) -> float:
        return 0.002 + 1e-5 * sum(prefill_new) + 1e-4 * n_decode + 1e-8 * decode_kv_tokens

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        return 0.002 + 1e-4 * n_decode + 1e-8 * decode_kv_tokens.astype(np.float64)


def make_trace(arrival_s: Sequence[float], isl: Sequence[int], osl: Sequence[int],
               hash_ids: Sequence[Sequence[int]] | None = None, block_size: int = 512,
               session: Sequence[int] | None = None, delay_s: Sequence[float] | None = None) -> Trace:
    n = len(isl)
    z = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
    blocks = hash_ids or [[] for _ in range(n)]
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blocks])
    flat = [x for b in blocks for x in b]
    return Trace(
        arrival_ns=z(np.rint(np.asarray(arrival_s) * 1e9)), isl=z(isl), osl=z(osl), hash_offsets=offsets,
        hash_ids=z(flat), session=z(session) if session is not None else np.full(n, -1, dtype=np.int64),
        delay_ns=z(np.rint(np.asarray(delay_s) * 1e9)) if delay_s is not None else np.full(n, -1, dtype=np.int64),
        line=np.arange(1, n + 1, dtype=np.int64), block_size=block_size,
    )


def random_trace(n: int, seed: int = 0, rate: float = 5.0, groups: int = 5, isl_max: int = 3000,
                 osl_max: int = 400) -> Trace:
    """Poisson arrivals; prompts open with one of ``groups`` shared 2-block prefixes, then private blocks."""
    rng = np.random.default_rng(seed)
    arr = np.cumsum(rng.exponential(1 / rate, n))
    arr -= arr[0]
    isl = rng.integers(100, isl_max, n)
    osl = rng.integers(1, osl_max, n)
    blocks = []
    for i in range(n):
        nb = -(-int(isl[i]) // 512)
        g = int(rng.integers(groups))
        blocks.append([g * 1000 + j if j < 2 else 10**6 + i * 100 + j for j in range(nb)])
    return make_trace(arr.tolist(), isl.tolist(), osl.tolist(), blocks)


def replay(trace: Trace, perf: PerfModel | None = None, *, workers: int = 1, num_blocks: int = 100_000,
           router: str = "round_robin", fast_forward: bool = True, seed: int = 0,
           horizon_s: float | None = None, concurrency: int | None = None, **engine: object) -> ReplayResult:
    args = EngineArgs.model_validate(engine)
    spec = PoolSpec("agg", args, perf or LinearStep(), num_blocks, 1, trace.block_size)
    pool = Pool(spec, make_router(router, RouterConfig(), np.random.default_rng(seed)), LogHistogram(),
                fast_forward=fast_forward)
    pool.add_workers(workers, 0)
    opts = ReplayOptions(seed=seed, fast_forward=fast_forward, concurrency=concurrency,
                         horizon_ns=None if horizon_s is None else int(horizon_s * 1e9))
    return Replay(trace, pool, opts).run()


@pytest.fixture
def shared_traces() -> Path:
    if not SHARED_TRACES.exists():
        pytest.skip(f"shared traces not found at {SHARED_TRACES}")
    return SHARED_TRACES
