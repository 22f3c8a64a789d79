"""The planner's load summary is the time-weighted mean and peak of each FPM signal, computed exactly as numpy's
per-column reductions compute them: its row-wise matrix form must not move a bit (the planner's decisions, and so
every planner run's results, depend on these figures)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import numpy as np

from llmreplay.engine.fpm import FPM_COLUMNS, FpmLog
from llmreplay.planner.observe import summarize


def column_by_column(rec: dict[str, Any], window_ns: int) -> dict[str, float]:
    """The summary as one numpy reduction per column (the form it had before the matrix)."""
    col = {k: np.asarray(v, dtype=np.float64) for k, v in rec.items()}
    dur = col["t_end_ns"] - col["t_start_ns"]
    total = float(dur.sum())
    steps = float(col["steps"].sum())
    kv = (col["decode_kv_first"] + col["decode_kv_last"]) / 2

    def mean(v: Any) -> float:
        return float((v * dur).sum() / total) if total > 0 else float(v.mean())

    return {
        "busy_fraction": min(1.0, total / window_ns), "steps": int(steps),
        "queued_prefill_mean": mean(col["queued_prefill_tokens"]),
        "queued_prefill_peak": float(col["queued_prefill_tokens"].max()),
        "decode_requests_mean": mean(col["num_decode_requests"]),
        "decode_requests_peak": float(col["num_decode_requests"].max()),
        "decode_kv_mean": mean(kv), "decode_kv_peak": float(col["decode_kv_last"].max()),
        "prefill_tokens_per_step": float(col["sum_prefill_tokens"].sum()) / max(steps, 1.0),
        "kv_used_blocks_mean": mean(col["kv_used_blocks"]), "kv_used_blocks_peak": float(col["kv_used_blocks"].max()),
        "step_s_mean": total / 1e9 / max(steps, 1.0),
    }  # fmt: skip


def test_summary_equals_numpy_column_reductions_bit_for_bit() -> None:
    rng = random.Random(11)
    worker = SimpleNamespace(id=3)
    for case in range(400):
        log = FpmLog(worker=3)
        t = rng.randrange(10**12)
        zero_length = case % 50 == 0  # every record of no duration: the plain means are used
        for _ in range(rng.choice([1, 2, 7, 8, 9, 13, 16, 17, 40, 130, 300])):  # around numpy's unroll blocks
            steps = rng.choice([1, 1, 3, 64])
            length = 0 if zero_length else rng.randrange(1, 10**8)
            values = {c: rng.randrange(10 ** rng.randint(1, 9)) for c in FPM_COLUMNS}
            values.update(t_start_ns=t, t_end_ns=t + length, steps=steps)
            log.append(**values)
            t += length + rng.randrange(10**6)
        rec = log.read_since(0)
        got = summarize(worker, rec, 5 * 10**9)  # type: ignore[arg-type]
        assert got is not None
        for name, want in column_by_column(rec, 5 * 10**9).items():
            assert getattr(got, name) == want, (case, name)
