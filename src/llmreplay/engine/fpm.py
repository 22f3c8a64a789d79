"""Forward-pass metrics (FPM): what a live planner sees of each engine.

One record per engine step, or one per fast-forwarded stretch of identical decode steps (``steps > 1``,
with the KV totals of its first and last step). Stored column-wise in ``array('q')`` while the replay runs:
appending is nearly as cheap as to a list, a value takes 8 bytes instead of a list slot plus an int object
(a million-request replay writes tens of millions of values), and numpy reads the buffers without copying.

Two readers, two lifetimes. The run report reads :data:`REPORT_COLUMNS` of every record at the end; the planner
reads every column of the records since its last tick, once. So the other columns are *planner detail*: a log
with ``planner_detail`` off never stores them (no planner in the run), and :meth:`FpmLog.read_since` lets go of
the detail the planner has read. Memory then grows with 5 columns per record instead of 14.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FPM_COLUMNS = (
    "t_start_ns",  # start of the first step
    "t_end_ns",  # end of the last step
    "steps",  # steps this record covers (1 unless fast-forwarded)
    "num_prefill_requests",  # requests with a prefill chunk (only when steps == 1)
    "sum_prefill_tokens",  # new prompt tokens computed in the step
    "sum_prefill_kv_tokens",  # context tokens the prefill chunks attend to
    "prefill_attention",  # sum over chunks of new × (context + new/2): the attention work, in token²
    "num_decode_requests",
    "decode_kv_first",  # total decode context tokens read in the first step
    "decode_kv_last",  # ... and in the last step
    "kv_used_blocks",  # blocks held by running requests after the record
    "num_running",
    "num_waiting",  # queued requests (not admitted) after the record
    "queued_prefill_tokens",  # prompt tokens not yet computed (waiting + partially prefilled)
)
#: what the run report reads of every record (time series, pool peaks); kept for the whole run
REPORT_COLUMNS = ("t_start_ns", "t_end_ns", "kv_used_blocks", "num_waiting", "queued_prefill_tokens")
PLANNER_COLUMNS = tuple(c for c in FPM_COLUMNS if c not in REPORT_COLUMNS)


class FpmLog:
    """The FPM records of one worker, column-wise. ``cols`` maps each stored column to its values; a planner
    column holds only the records from :attr:`detail_start` on (what the planner has not read yet)."""

    __slots__ = ("_planner", "_report", "cols", "detail_start", "planner_detail", "worker")

    def __init__(self, worker: int, planner_detail: bool = True) -> None:
        self.worker = worker
        self.planner_detail = planner_detail
        self.detail_start = 0
        self.cols: dict[str, array[int]] = {c: array("q") for c in FPM_COLUMNS
                                            if planner_detail or c in REPORT_COLUMNS}
        # append order of FPM_COLUMNS, split by reader
        self._report = tuple(self.cols[c].append for c in REPORT_COLUMNS)
        self._planner = tuple(self.cols[c].append for c in PLANNER_COLUMNS) if planner_detail else ()

    def append(self, t_start_ns: int, t_end_ns: int, steps: int, num_prefill_requests: int, sum_prefill_tokens: int,
               sum_prefill_kv_tokens: int, prefill_attention: int, num_decode_requests: int, decode_kv_first: int,
               decode_kv_last: int, kv_used_blocks: int, num_running: int, num_waiting: int,
               queued_prefill_tokens: int) -> None:
        t0, t1, kv, waiting, queued = self._report
        t0(t_start_ns)
        t1(t_end_ns)
        kv(kv_used_blocks)
        waiting(num_waiting)
        queued(queued_prefill_tokens)
        if self._planner:
            steps_, npr, spt, spkv, att, ndr, kvf, kvl, running = self._planner
            steps_(steps)
            npr(num_prefill_requests)
            spt(sum_prefill_tokens)
            spkv(sum_prefill_kv_tokens)
            att(prefill_attention)
            ndr(num_decode_requests)
            kvf(decode_kv_first)
            kvl(decode_kv_last)
            running(num_running)

    def __len__(self) -> int:
        return len(self.cols["t_end_ns"])

    def read_since(self, start: int) -> dict[str, Sequence[int]]:
        """Every column of the records from ``start`` on (the planner's read), then let go of the planner
        detail of all records up to now: each record is read once."""
        if not self.planner_detail:
            raise RuntimeError("this FPM log keeps no planner detail (the run has no planner)")
        if start < self.detail_start:
            raise ValueError(f"planner detail before record {self.detail_start} was already read")
        end = len(self)
        out: dict[str, Sequence[int]] = {}
        for name, col in self.cols.items():
            out[name] = col[start:end] if name in REPORT_COLUMNS else col[start - self.detail_start:]
        for name in PLANNER_COLUMNS:
            del self.cols[name][:]
        self.detail_start = end
        return out

    def to_arrays(self) -> dict[str, npt.NDArray[np.int64]]:
        """The columns holding every record, as int64 arrays sharing the log's memory (no copy): the report
        columns always, the planner columns while none has been read."""
        n = len(self)
        return {k: np.frombuffer(v, dtype=np.int64) if len(v) else np.zeros(0, dtype=np.int64)
                for k, v in self.cols.items() if len(v) == n}
