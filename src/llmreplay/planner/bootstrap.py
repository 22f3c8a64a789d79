"""Bootstrap the planner's regressions before the first tick by sweeping the engine's own perf model.

This is ``pre_deployment_sweeping_mode: rapid`` for every perf model (Dynamo needs AIConfigurator for it and
otherwise silently falls back to threshold scaling). Points per axis: ``--benchmark-granularity``.

* prefill: one prompt of P tokens, P from MBT/g up to ``max_num_batched_tokens`` (never beyond: a longer
  prompt is chunked);
* decode: n requests (1 … ``max_num_seqs``) × context c (500, 2000, 4000, 8000 tokens) while n·c fits the KV
  cache;
* agg: the prefill-only and decode-only points together, on the (prefill tokens, decode KV) axes.
"""

from __future__ import annotations

import numpy as np

from llmreplay.cluster.pool import PoolSpec
from llmreplay.planner.regression import Regression

CONTEXTS = (500, 2000, 4000, 8000)


def prefill_points(spec: PoolSpec, granularity: int) -> list[tuple[float, float]]:
    """(prefill tokens, step seconds) of one fresh prompt (no cached context: attention work P²/2)."""
    mbt = spec.args.max_num_batched_tokens
    pts = []
    for p in np.unique(np.linspace(mbt / granularity, mbt, granularity).astype(int)):
        t = spec.perf.step_s([int(p)], [0], 0, 0) / spec.args.speedup_ratio
        pts.append((float(p), t))
    return pts


def decode_points(spec: PoolSpec, granularity: int) -> list[tuple[float, float, float]]:
    """(decode requests, decode KV tokens, step seconds)."""
    kv_tokens = spec.num_blocks * spec.args.block_size
    seqs = spec.args.max_num_seqs
    pts = []
    for n in np.unique(np.linspace(1, seqs, granularity).astype(int)):
        for c in CONTEXTS:
            k = int(n) * c
            if k > kv_tokens:
                continue
            t = float(spec.perf.decode_steps_s(int(n), np.asarray([k], dtype=np.int64))[0])
            pts.append((float(n), float(k), t / spec.args.speedup_ratio))
    return pts


def bootstrap_prefill(reg: Regression, spec: PoolSpec, granularity: int) -> None:
    for p, t in prefill_points(spec, granularity):
        reg.add((p, p * p / 2), t)
    reg.fit()


def bootstrap_decode(reg: Regression, spec: PoolSpec, granularity: int) -> None:
    for n, k, t in decode_points(spec, granularity):
        reg.add((n, k), t)
    reg.fit()


def bootstrap_agg(reg: Regression, spec: PoolSpec, granularity: int) -> None:
    for p, t in prefill_points(spec, granularity):
        reg.add((p, 0.0, p * p / 2), t)
    for _, k, t in decode_points(spec, granularity):
        reg.add((0.0, k, 0.0), t)
    reg.fit()
