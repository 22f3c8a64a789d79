"""Dynamo's forward-pass metrics (``dynamo/common/forward_pass_metrics.py``, FPM version 1).

One record per worker and data-parallel rank: what the engine scheduled in its last forward pass and what
waits in its queues. The Dynamo policy reads nothing else about an engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scheduled:
    num_prefill_requests: int = 0
    sum_prefill_tokens: int = 0
    var_prefill_length: float = 0.0
    sum_prefill_kv_tokens: int = 0
    num_decode_requests: int = 0
    sum_decode_kv_tokens: int = 0
    var_decode_kv_tokens: float = 0.0


@dataclass(frozen=True)
class Queued:
    num_prefill_requests: int = 0
    sum_prefill_tokens: int = 0
    var_prefill_length: float = 0.0
    num_decode_requests: int = 0
    sum_decode_kv_tokens: int = 0
    var_decode_kv_tokens: float = 0.0


@dataclass(frozen=True)
class Fpm:
    worker_id: str = "0"
    dp_rank: int = 0
    wall_time: float = 0.0
    scheduled: Scheduled = field(default_factory=Scheduled)
    queued: Queued = field(default_factory=Queued)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fpm:
        """Dynamo's JSON shape: ``{worker_id, dp_rank, wall_time, scheduled_requests, queued_requests}``."""
        return cls(
            worker_id=str(d.get("worker_id", "0")),
            dp_rank=int(d.get("dp_rank", 0)),
            wall_time=float(d.get("wall_time", 0.0)),
            scheduled=Scheduled(**dict(d.get("scheduled_requests") or {})),
            queued=Queued(**dict(d.get("queued_requests") or {})),
        )


#: FPMs of one pool at a tick, keyed by (worker id, dp rank), as Dynamo's ``FpmObservations`` holds them
FpmMap = dict[tuple[str, int], Fpm]
