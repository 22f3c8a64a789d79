"""KV block pool with prefix caching, counted in blocks rather than block ids.

Modelled on vLLM v1's ``BlockPool`` (``vllm/v1/core/block_pool.py``): blocks are *free*, *private* (held by a
request, not in the prefix cache), *shared* (a cached full block referenced by at least one request) or
*evictable* (a cached block no request references; vLLM keeps it in the free queue with its hash and evicts
it least recently freed first). Two simplifications keep the replay fast and are exact for what the
simulation observes:

* We never need physical block ids, only counts, so the pool keeps counters plus a map of cached prefixes.
* Cached prefixes are tracked per **hash block**: a trace hash block (a Mooncake ``hash_id``, e.g. 512 tokens)
  is ``blocks_per_hash_block`` engine blocks (32 blocks of 16 tokens), because the trace's hash ids are the
  only content identity we have. The key of a hash block is its chained prefix key (it identifies the whole
  prefix up to and including that block, as vLLM's chained block hashes do).

Which blocks each request holds is the :class:`~llmreplay.engine.kv_cache_manager.KVCacheManager`'s business;
this pool only counts. Invariants (checked by :meth:`BlockPool.check`): ``free + private +
blocks_per_hash_block * (shared + evictable) == num_blocks``, no counter is negative, and a hash block is
evictable exactly when its reference count is 0. An allocation either succeeds completely or changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class PoolStats:
    """Cumulative counters for the report."""

    evicted_hash_blocks: int = 0
    allocated_blocks: int = 0


class BlockPool:
    """Free / private / shared / evictable block accounting for one engine."""

    __slots__ = (
        "_evictable",
        "blocks_per_hash_block",
        "enable_caching",
        "evict_head_first",
        "num_blocks",
        "num_free_blocks",
        "num_private_blocks",
        "num_shared_hash_blocks",
        "ref_counts",
        "stats",
    )

    def __init__(self, num_blocks: int, blocks_per_hash_block: int, enable_caching: bool,
                 evict_head_first: bool = False) -> None:
        self.num_blocks = num_blocks
        self.blocks_per_hash_block = blocks_per_hash_block
        self.enable_caching = enable_caching
        #: a freed prompt's blocks queue for eviction head first (Dynamo 1.6.1's mocker), not tail first (vLLM)
        self.evict_head_first = evict_head_first
        self.num_free_blocks = num_blocks
        #: blocks held by requests outside the prefix cache (partial blocks, decode growth, duplicates)
        self.num_private_blocks = 0
        #: cached hash blocks referenced by at least one request
        self.num_shared_hash_blocks = 0
        #: prefix key -> number of requests referencing it (0: cached and evictable)
        self.ref_counts: dict[int, int] = {}
        #: keys with reference count 0, least recently freed first (vLLM's free queue order)
        self._evictable: OrderedDict[int, None] = OrderedDict()
        self.stats = PoolStats()

    # ----------------------------------------------------------------- queries
    @property
    def num_evictable_hash_blocks(self) -> int:
        return len(self._evictable)

    @property
    def num_allocatable_blocks(self) -> int:
        """Blocks an allocation may take right now (free + evictable cached)."""
        return self.num_free_blocks + self.blocks_per_hash_block * len(self._evictable)

    @property
    def num_used_blocks(self) -> int:
        """Blocks held by requests (what vLLM's ``kv_cache_usage`` counts)."""
        return self.num_private_blocks + self.blocks_per_hash_block * self.num_shared_hash_blocks

    def get_cached_prefix(self, keys: list[int], max_hash_blocks: int) -> tuple[int, int]:
        """Length of the longest cached prefix of ``keys`` (at most ``max_hash_blocks``) and how many of those
        hash blocks are evictable now (they stop being allocatable once a request takes them)."""
        if not self.enable_caching:
            return 0, 0
        hits = 0
        evictable = 0
        ref_counts = self.ref_counts
        for key in keys[:max_hash_blocks]:
            rc = ref_counts.get(key)
            if rc is None:
                break
            hits += 1
            if rc == 0:
                evictable += 1
        return hits, evictable

    def cached_prefix_len(self, keys: list[int]) -> int:
        """Length of the longest cached prefix of ``keys`` (a KV router's overlap: one lookup per key, for every
        worker at every arrival)."""
        if not self.enable_caching:
            return 0
        ref_counts = self.ref_counts
        hits = 0
        for key in keys:
            if key not in ref_counts:
                break
            hits += 1
        return hits

    # ----------------------------------------------------------------- mutations
    def touch(self, keys: list[int], n: int) -> None:
        """Take a reference on each of the first ``n`` keys (a prefix hit found by :meth:`get_cached_prefix`);
        an evictable one leaves the eviction queue (vLLM's ``BlockPool.touch``)."""
        ref_counts = self.ref_counts
        for key in keys[:n]:
            rc = ref_counts[key]
            if rc == 0:
                del self._evictable[key]
                self.num_shared_hash_blocks += 1
            ref_counts[key] = rc + 1

    def get_new_blocks(self, n: int) -> bool:
        """Take ``n`` private blocks, evicting cached hash blocks least recently freed first when the free
        blocks do not suffice. All or nothing: False (and no change) when even eviction cannot make room."""
        if n <= 0:
            return True
        if n > self.num_free_blocks:
            if n > self.num_allocatable_blocks:
                return False
            per_hash_block = self.blocks_per_hash_block
            evict = -(-(n - self.num_free_blocks) // per_hash_block)  # hash blocks to evict, oldest first
            pop = self._evictable.popitem
            ref_counts = self.ref_counts
            for _ in range(evict):
                del ref_counts[pop(last=False)[0]]
            self.num_free_blocks += evict * per_hash_block
            self.stats.evicted_hash_blocks += evict
        self.num_free_blocks -= n
        self.num_private_blocks += n
        self.stats.allocated_blocks += n
        return True

    def cache_full_block(self, key: int) -> bool:
        """A request finished computing the hash block ``key`` in its private blocks: put those blocks in the
        prefix cache, referenced once (by that request). False, and the blocks stay private, when caching is off
        or another request cached the same prefix first (computed twice concurrently: a duplicate)."""
        if not self.enable_caching or key in self.ref_counts:
            return False
        self.ref_counts[key] = 1
        self.num_private_blocks -= self.blocks_per_hash_block
        self.num_shared_hash_blocks += 1
        return True

    def cache_full_blocks(self, keys: list[int], start: int, end: int) -> list[int]:
        """:meth:`cache_full_block` for ``keys[start:end]`` in one call (vLLM's ``cache_full_blocks``); returns
        the keys this call cached (the others were cached by another request first, or caching is off)."""
        if not self.enable_caching:
            return []
        ref_counts = self.ref_counts
        cached = []
        for key in keys[start:end]:
            if key not in ref_counts:
                ref_counts[key] = 1
                cached.append(key)
        self.num_private_blocks -= self.blocks_per_hash_block * len(cached)
        self.num_shared_hash_blocks += len(cached)
        return cached

    def free_blocks(self, keys: list[int], num_private: int, tail_first: bool = False) -> None:
        """Return a request's blocks: ``num_private`` private ones and one reference on each cached key. Keys
        that drop to no reference become evictable in reverse order, so the tail of a prompt is evicted before
        its head (as vLLM's ``free`` does); with ``evict_head_first``, in prompt order, unless ``tail_first``
        (a preempted request: Dynamo's mocker frees its blocks tail first whatever it does on completion)."""
        self.num_private_blocks -= num_private
        self.num_free_blocks += num_private
        ref_counts = self.ref_counts
        evictable = self._evictable
        before = len(evictable)  # a key drops to no reference at most once here (a request holds it once)
        for key in keys if self.evict_head_first and not tail_first else reversed(keys):
            rc = ref_counts[key] - 1
            ref_counts[key] = rc
            if not rc:
                evictable[key] = None
        self.num_shared_hash_blocks -= len(evictable) - before

    def check(self) -> None:
        """Assert the pool's invariants (tests and the debug mode)."""
        total = (self.num_free_blocks + self.num_private_blocks
                 + self.blocks_per_hash_block * (self.num_shared_hash_blocks + len(self._evictable)))
        assert total == self.num_blocks, (total, self.num_blocks)
        assert self.num_free_blocks >= 0 and self.num_private_blocks >= 0 and self.num_shared_hash_blocks >= 0
        assert all(rc >= 0 for rc in self.ref_counts.values())
        assert sum(1 for rc in self.ref_counts.values() if rc > 0) == self.num_shared_hash_blocks
        assert {k for k, rc in self.ref_counts.items() if rc == 0} == set(self._evictable)
