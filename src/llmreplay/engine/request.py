"""A request's state inside one engine (vLLM's ``Request``: tokens known vs tokens computed)."""

from __future__ import annotations

from enum import IntEnum


class Phase(IntEnum):
    WAITING = 0
    PREFILL = 1  # running, prompt (or recompute) not fully computed
    DECODE = 2  # running, one token per step
    DONE = 3
    HELD = 4  # disagg prefill worker: prefill done, KV held until the transfer to a decode worker ends
    INCOMING = 5  # disagg decode worker: KV blocks reserved, transfer in flight or done, not yet running


class Request:
    """Engine-side request. Token accounting follows vLLM v1: ``num_tokens`` known tokens (prompt plus
    generated so far), ``num_computed`` of them already in KV. A step schedules
    ``num_tokens - num_computed`` tokens (capped by the budget); when a step computes the last known token a
    new token is sampled. While in DECODE the generated count is lazy: ``engine.steps - decode_origin`` (one
    increment per decode step for the whole batch, so a step costs O(1), not O(batch)). The KV blocks a
    request holds are the engine's :class:`~llmreplay.engine.kv_cache_manager.KVCacheManager`'s to track."""

    __slots__ = (
        "arrival_ns",
        "block_phase",
        "cached_tokens",
        "decode_origin",
        "finish_ns",
        "first_token_ns",
        "generated",
        "hold_kv",
        "idx",
        "isl",
        "keys",
        "last_token_ns",
        "num_computed",
        "num_tokens",
        "osl",
        "phase",
        "preemptions",
        "worker",
    )

    def __init__(self, idx: int, isl: int, osl: int, keys: list[int], arrival_ns: int) -> None:
        self.idx = idx
        self.isl = isl
        self.osl = osl
        #: chained prefix keys of the prompt's full trace hash blocks (what the prefix cache knows it by)
        self.keys = keys
        self.arrival_ns = arrival_ns
        self.num_tokens = isl
        self.num_computed = 0
        self.generated = 0
        #: DECODE: the engine step at which ``generated`` would have been 0 (generated = steps - this)
        self.decode_origin = 0
        #: DECODE: engine steps ``s`` with ``s % block_size == block_phase`` open a new KV block for it
        self.block_phase = 0
        self.phase = Phase.WAITING
        self.first_token_ns = -1
        self.last_token_ns = -1
        self.finish_ns = -1
        self.cached_tokens = -1  # prefix-cache hit at first admission (-1: never admitted)
        self.preemptions = 0
        self.worker = -1
        #: disagg prefill: stop after the first token and keep the KV blocks for the transfer
        self.hold_kv = False

    def __repr__(self) -> str:
        return (
            f"Request({self.idx}, isl={self.isl}, osl={self.osl}, phase={self.phase.name}, "
            f"computed={self.num_computed}/{self.num_tokens}, gen={self.generated})"
        )
