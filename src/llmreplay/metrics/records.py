"""Per-request records: one numpy column per field, indexed like the trace.

Every request of the trace ends in exactly one status: ``completed``, ``rejected`` (with a reason) or
``unfinished`` (still queued, running or not yet released when the simulation stopped).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.errors import InputError

I64 = npt.NDArray[np.int64]


class Status(IntEnum):
    PENDING = 0  # not finished yet (reported as unfinished when the run stops)
    COMPLETED = 1
    REJECTED = 2
    UNFINISHED = 3


STATUS_NAMES = {s.value: s.name.lower() for s in Status}

#: why a request was rejected (the codes stored in ``reason``)
REJECT_REASONS = {
    1: "exceeds_kv_capacity",  # prompt + output can never fit in one worker's KV cache
    2: "exceeds_max_model_len",  # prompt + output longer than max_model_len
    3: "exceeds_batch_budget",  # chunked prefill disabled and the sequence exceeds max_num_batched_tokens
}
#: rows of the ``.jsonl`` per-request file converted to Python objects at once
JSONL_ROWS_PER_WRITE = 65_536


@dataclass
class RequestRecords:
    """Columns of per-request outcomes (times in ns on the simulated clock, -1 when not applicable)."""

    isl: I64
    osl: I64
    trace_arrival_ns: I64
    arrival_ns: I64  # when the request was actually sent (session turns and closed loop differ)
    first_token_ns: I64
    finish_ns: I64
    cached_tokens: I64
    worker: I64  # agg worker, or the decode worker in disagg
    prefill_worker: I64  # disagg: the prefill worker (-1 in agg or when prefilled on the decode worker)
    transfer_ns: I64  # disagg: KV transfer time (-1 when none)
    preemptions: I64
    status: I64
    reason: I64
    line: I64

    @classmethod
    def empty(cls, isl: I64, osl: I64, trace_arrival_ns: I64, line: I64) -> RequestRecords:
        n = isl.shape[0]

        def full(v: int) -> I64:
            return np.full(n, v, dtype=np.int64)

        return cls(
            isl=isl, osl=osl, trace_arrival_ns=trace_arrival_ns, arrival_ns=full(-1), first_token_ns=full(-1),
            finish_ns=full(-1), cached_tokens=full(-1), worker=full(-1), prefill_worker=full(-1),
            transfer_ns=full(-1), preemptions=full(0),
            status=full(Status.PENDING), reason=full(0), line=line,
        )  # fmt: skip

    def __len__(self) -> int:
        return int(self.isl.shape[0])

    @property
    def completed(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.status == Status.COMPLETED, dtype=bool)

    def counts(self) -> dict[str, Any]:
        rejected = self.status == Status.REJECTED
        by_reason: dict[str, int] = {}
        for code, name in REJECT_REASONS.items():
            c = int((self.reason[rejected] == code).sum())
            if c:
                by_reason[name] = c
        return {
            "total": len(self),
            "completed": int(self.completed.sum()),
            "rejected": int(rejected.sum()),
            "unfinished": int((self.status == Status.UNFINISHED).sum()),
            "rejected_by_reason": by_reason,
        }

    def columns(self) -> dict[str, Any]:
        """Columns for the per-request output file (times in ms, strings for enums); the latency columns are the
        metric definitions' per-request values (every request, warm-up included)."""
        from llmreplay.metrics.definitions import ITL, NS_PER_MS, REQUEST_LATENCY, TTFT

        def ms(a: I64) -> npt.NDArray[np.float64]:
            out = a.astype(np.float64) / NS_PER_MS
            out[a < 0] = np.nan
            return out
        return {
            "request": np.arange(len(self)),
            "line": self.line,
            "status": np.asarray([STATUS_NAMES[int(s)] for s in self.status]),
            "reject_reason": np.asarray([REJECT_REASONS.get(int(r), "") for r in self.reason]),
            "isl": self.isl,
            "osl": self.osl,
            "trace_arrival_ms": ms(self.trace_arrival_ns),
            "arrival_ms": ms(self.arrival_ns),
            "first_token_ms": ms(self.first_token_ns),
            "finish_ms": ms(self.finish_ns),
            "ttft_ms": TTFT.per_request(self),
            "itl_ms": ITL.per_request(self),
            "request_latency_ms": REQUEST_LATENCY.per_request(self),
            "cached_tokens": self.cached_tokens,
            "worker": self.worker,
            "prefill_worker": self.prefill_worker,
            "kv_transfer_ms": ms(self.transfer_ns),
            "preemptions": self.preemptions,
        }

    def write(self, path: Path) -> None:
        """Write per-request records as ``.parquet`` or ``.jsonl`` (by extension)."""
        cols = self.columns()
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table(cols), path)
        elif suffix in (".jsonl", ".json"):
            import json

            names = list(cols)
            with path.open("w") as f:
                # a slice of rows at a time: Python objects for every cell of a million requests would take
                # ~0.7 GB, a slice takes a few MB
                for start in range(0, len(self), JSONL_ROWS_PER_WRITE):
                    lists = [cols[k][start : start + JSONL_ROWS_PER_WRITE].tolist() for k in names]
                    f.writelines(
                        json.dumps({k: (None if isinstance(v, float) and v != v else v)
                                    for k, v in zip(names, row, strict=True)}) + "\n"
                        for row in zip(*lists, strict=True)
                    )
        else:
            raise InputError(f"--requests-out {path}: the extension must be .parquet or .jsonl")
