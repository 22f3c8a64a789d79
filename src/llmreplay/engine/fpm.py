"""Forward-pass metrics (FPM): what a live planner sees of each engine.

One record per engine step, or one per fast-forwarded stretch of identical decode steps (``steps > 1``,
with the KV totals of its first and last step). Stored column-wise in ``array('q')`` while the replay runs:
appending is nearly as cheap as to a list, a value takes 8 bytes instead of a list slot plus an int object
(a million-request replay writes tens of millions of values), and numpy reads the buffers without copying.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

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


@dataclass
class FpmLog:
    """Column lists, one per field in :data:`FPM_COLUMNS`."""

    worker: int
    cols: dict[str, array[int]] = field(default_factory=lambda: {c: array("q") for c in FPM_COLUMNS})

    def append(self, *values: int) -> None:
        for col, v in zip(self._order, values, strict=True):
            col.append(v)

    def __post_init__(self) -> None:
        self._order = [self.cols[c] for c in FPM_COLUMNS]

    def __len__(self) -> int:
        return len(self.cols["t_end_ns"])

    def to_arrays(self) -> dict[str, npt.NDArray[np.int64]]:
        return {k: np.frombuffer(v, dtype=np.int64) if len(v) else np.zeros(0, dtype=np.int64)
                for k, v in self.cols.items()}
