"""Which KV blocks each request holds: the layer between the scheduler and the :class:`BlockPool`.

Modelled on vLLM v1's ``KVCacheManager`` (``vllm/v1/core/kv_cache_manager.py``): the scheduler asks for a
request's prefix hit (``get_computed_blocks``), for the blocks of the tokens it schedules (``allocate_slots``,
all or nothing, so a failure means "preempt someone"), tells it which full blocks the step computed
(``cache_blocks``) and hands back everything a request holds when it finishes or is preempted (``free``). The
request → blocks map (vLLM's ``req_to_blocks``) lives here, not on the request.

One deviation keeps decode steps O(1) however large the batch: the blocks decoding requests need as their
contexts grow are allocated for the whole batch at once (:meth:`allocate_decode_blocks`, the engine counts how
many requests cross a block boundary each step), and a request's own count is brought up to date when it
leaves the decode batch (:meth:`set_num_blocks`). Until then its entry in the map counts the blocks it held
when it started decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmreplay.engine.kv_cache import BlockPool
from llmreplay.engine.request import Request


def cdiv(a: int, b: int) -> int:
    """Ceiling division (vLLM's ``cdiv``)."""
    return -(-a // b)


@dataclass(slots=True)
class PrefixHit:
    """A cached prefix found for a request: how many hash blocks, and how many of them are evictable now
    (taking those makes them unavailable for new allocations)."""

    num_hash_blocks: int = 0
    num_evictable: int = 0


NO_HIT = PrefixHit()


@dataclass(slots=True)
class RequestBlocks:
    """The blocks one request holds (vLLM's ``req_to_blocks`` entry, as counts)."""

    #: all blocks it holds, its cached hash blocks included (stale while it decodes: see the module doc)
    num_blocks: int
    #: prefix keys of the cached hash blocks it references, in prompt order
    cached_keys: list[int] = field(default_factory=list)
    #: hash blocks of its prompt already offered to the cache (vLLM's ``num_cached_block``)
    num_offered: int = 0


class KVCacheManager:
    """Prefix-cache lookups and per-request block accounting for one engine."""

    __slots__ = ("block_pool", "block_size", "blocks_per_hash_block", "hash_block_tokens", "req_to_blocks")

    def __init__(self, num_blocks: int, block_size: int, hash_block_tokens: int, enable_caching: bool,
                 evict_head_first: bool = False) -> None:
        if hash_block_tokens % block_size:
            raise ValueError("trace block size must be a multiple of the engine block size")
        self.block_size = block_size
        self.hash_block_tokens = hash_block_tokens
        self.blocks_per_hash_block = hash_block_tokens // block_size
        self.block_pool = BlockPool(num_blocks, self.blocks_per_hash_block, enable_caching, evict_head_first)
        self.req_to_blocks: dict[int, RequestBlocks] = {}

    # ----------------------------------------------------------------- queries
    @property
    def num_blocks(self) -> int:
        return self.block_pool.num_blocks

    @property
    def num_used_blocks(self) -> int:
        """Blocks held by requests (vLLM's ``usage`` × capacity)."""
        return self.block_pool.num_used_blocks

    @property
    def num_allocatable_blocks(self) -> int:
        return self.block_pool.num_allocatable_blocks

    @property
    def evicted_hash_blocks(self) -> int:
        return self.block_pool.stats.evicted_hash_blocks

    def get_computed_blocks(self, req: Request, max_tokens: int) -> PrefixHit:
        """The longest cached prefix of ``req``'s prompt covering at most ``max_tokens`` tokens (vLLM caps a hit
        at ``num_tokens - 1``: the last token is always computed, to produce logits)."""
        hits, evictable = self.block_pool.get_cached_prefix(req.keys, min(len(req.keys),
                                                                         max_tokens // self.hash_block_tokens))
        return PrefixHit(hits, evictable) if hits else NO_HIT

    def cached_prefix_tokens(self, keys: list[int]) -> int:
        """Tokens of the longest cached prefix of ``keys`` (a KV router's overlap)."""
        return self.block_pool.cached_prefix_len(keys) * self.hash_block_tokens

    def can_allocate(self, num_tokens: int, hit: PrefixHit) -> bool:
        """Whether a new request with prefix ``hit`` could hold ``num_tokens`` tokens now."""
        need = cdiv(num_tokens, self.block_size) - hit.num_hash_blocks * self.blocks_per_hash_block
        return need <= self.block_pool.num_allocatable_blocks - self.blocks_per_hash_block * hit.num_evictable

    def num_blocks_of(self, req: Request) -> int:
        return self.req_to_blocks[req.idx].num_blocks

    # ----------------------------------------------------------------- mutations
    def allocate_new(self, req: Request, num_tokens: int, hit: PrefixHit) -> bool:
        """A request enters the running set: take the prefix ``hit`` and blocks for ``num_tokens`` tokens in all
        (the hit's included). All or nothing: False, and no change, when the blocks are not available."""
        assert req.idx not in self.req_to_blocks, req
        if not self.can_allocate(num_tokens, hit):
            return False
        pool = self.block_pool
        hashed = hit.num_hash_blocks * self.blocks_per_hash_block
        need = cdiv(num_tokens, self.block_size) - hashed
        pool.touch(req.keys, hit.num_hash_blocks)
        pool.get_new_blocks(need)
        self.req_to_blocks[req.idx] = RequestBlocks(
            hashed + need, list(req.keys[: hit.num_hash_blocks]), hit.num_hash_blocks
        )
        return True

    def allocate_slots(self, req: Request, num_tokens: int) -> bool:
        """Make a running request hold blocks for ``num_tokens`` tokens in all (vLLM's ``allocate_slots`` with
        ``num_computed_tokens + num_new_tokens``). All or nothing: False means someone must be preempted."""
        entry = self.req_to_blocks[req.idx]
        need = cdiv(num_tokens, self.block_size) - entry.num_blocks
        if not self.block_pool.get_new_blocks(need):
            return False
        if need > 0:
            entry.num_blocks += need
        return True

    def allocate_decode_blocks(self, n: int) -> bool:
        """The new blocks the decode batch needs this step (or stretch), taken at once. All or nothing."""
        return self.block_pool.get_new_blocks(n)

    def set_num_blocks(self, req: Request, num_blocks: int) -> None:
        """A request leaves the decode batch: record the blocks it holds now (allocated in bulk meanwhile)."""
        self.req_to_blocks[req.idx].num_blocks = num_blocks

    def cache_blocks(self, req: Request, num_computed_tokens: int) -> None:
        """``req`` has computed ``num_computed_tokens`` of its prompt: offer every full hash block among them
        to the prefix cache, once each. A block another request cached first stays private to this one."""
        entry = self.req_to_blocks[req.idx]
        full = min(len(req.keys), num_computed_tokens // self.hash_block_tokens)
        if entry.num_offered >= full:
            return
        entry.cached_keys += self.block_pool.cache_full_blocks(req.keys, entry.num_offered, full)
        entry.num_offered = full

    def free(self, req: Request, tail_first: bool = False) -> None:
        """Hand back everything ``req`` holds (finished, preempted, or its KV handed off); ``tail_first``: its
        cached blocks become evictable tail first whatever the pool's order (a preemption)."""
        entry = self.req_to_blocks.pop(req.idx)
        private = entry.num_blocks - self.blocks_per_hash_block * len(entry.cached_keys)
        self.block_pool.free_blocks(entry.cached_keys, private, tail_first)

    def check(self, lazy_decode_blocks: bool = False) -> None:
        """Assert the invariants: the pool's own, each cached key referenced exactly by the requests that hold
        it, and the private blocks the requests hold adding up to the pool's (at most, with requests decoding,
        whose growth is allocated in bulk and counted at :meth:`set_num_blocks`)."""
        pool = self.block_pool
        pool.check()
        refs: dict[int, int] = {}
        private = 0
        for entry in self.req_to_blocks.values():
            assert len(set(entry.cached_keys)) == len(entry.cached_keys), entry
            for key in entry.cached_keys:
                refs[key] = refs.get(key, 0) + 1
            own = entry.num_blocks - self.blocks_per_hash_block * len(entry.cached_keys)
            assert own >= 0, entry
            private += own
        assert refs == {k: rc for k, rc in pool.ref_counts.items() if rc > 0}
        if lazy_decode_blocks:
            assert private <= pool.num_private_blocks, (private, pool.num_private_blocks)
        else:
            assert private == pool.num_private_blocks, (private, pool.num_private_blocks)
        assert pool.num_used_blocks <= pool.num_blocks
