"""KV block pool with prefix caching, counted in blocks rather than block ids.

Modelled on vLLM v1's ``BlockPool`` / ``KVCacheManager``: blocks are either *free*, *active* (referenced by a
running request) or *cached-evictable* (a freed full block that still holds a known prefix, evicted LRU).
Two simplifications keep the replay fast and are exact for what the simulation observes:

* We never need physical block ids, only counts, so the pool keeps counters plus a map of cached prefixes.
* Cached prefixes are tracked per **trace block** (a ``unit`` of ``unit_blocks`` engine blocks, e.g. a 512-token
  Mooncake hash block = 32 blocks of 16 tokens), because the trace's hash ids are the only content identity
  we have. A unit is cached once the request that computed it has prefilled all its tokens.

Invariant (checked by :meth:`check`): ``free + private + unit_blocks*(active_units + evictable_units) ==
capacity`` and no counter is negative. An allocation either succeeds completely or changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class PoolStats:
    """Cumulative counters for the report."""

    evicted_units: int = 0
    allocated_blocks: int = 0


class BlockPool:
    """Free / private / shared-active / cached-evictable block accounting for one engine."""

    __slots__ = (
        "_lru",
        "active_units",
        "capacity",
        "free",
        "prefix_caching",
        "private",
        "refcount",
        "stats",
        "unit_blocks",
    )

    def __init__(self, capacity: int, unit_blocks: int, prefix_caching: bool) -> None:
        self.capacity = capacity
        self.unit_blocks = unit_blocks
        self.prefix_caching = prefix_caching
        self.free = capacity
        self.private = 0
        self.active_units = 0
        #: prefix key -> number of running requests referencing it (0 = cached, evictable)
        self.refcount: dict[int, int] = {}
        #: keys with refcount 0, least recently used first
        self._lru: OrderedDict[int, None] = OrderedDict()
        self.stats = PoolStats()

    # ----------------------------------------------------------------- queries
    @property
    def evictable_units(self) -> int:
        return len(self._lru)

    @property
    def allocatable(self) -> int:
        """Blocks an allocation may take right now (free + evictable cached)."""
        return self.free + self.unit_blocks * len(self._lru)

    @property
    def used(self) -> int:
        """Blocks held by running requests (what vLLM's ``kv_cache_usage`` counts)."""
        return self.private + self.unit_blocks * self.active_units

    def match_prefix(self, keys: list[int], max_units: int) -> tuple[int, int]:
        """Length of the longest cached prefix of ``keys`` (at most ``max_units``) and how many of those
        units are currently evictable (they stop being evictable once a request takes them)."""
        if not self.prefix_caching:
            return 0, 0
        hits = 0
        from_lru = 0
        refcount = self.refcount
        for key in keys[:max_units]:
            rc = refcount.get(key)
            if rc is None:
                break
            hits += 1
            if rc == 0:
                from_lru += 1
        return hits, from_lru

    def cached_prefix_units(self, keys: list[int]) -> int:
        """Longest cached prefix (for the KV router's overlap score)."""
        return self.match_prefix(keys, len(keys))[0]

    # ----------------------------------------------------------------- mutations
    def acquire_prefix(self, keys: list[int], n: int) -> None:
        """Take references on the first ``n`` keys (a prefix hit found by :meth:`match_prefix`)."""
        refcount = self.refcount
        for key in keys[:n]:
            rc = refcount[key]
            if rc == 0:
                del self._lru[key]
                self.active_units += 1
            refcount[key] = rc + 1

    def allocate(self, n: int) -> bool:
        """Take ``n`` private blocks, evicting cached units LRU-first if needed. All or nothing."""
        if n <= 0:
            return True
        if n > self.free:
            if n > self.allocatable:
                return False
            ub = self.unit_blocks
            while self.free < n:
                key, _ = self._lru.popitem(last=False)
                del self.refcount[key]
                self.free += ub
                self.stats.evicted_units += 1
        self.free -= n
        self.private += n
        self.stats.allocated_blocks += n
        return True

    def promote(self, key: int) -> bool:
        """A request finished computing the unit ``key`` out of its private blocks: cache it. Returns
        False (blocks stay private, a duplicate) when another request cached the same prefix first."""
        if not self.prefix_caching or key in self.refcount:
            return False
        self.refcount[key] = 1
        self.private -= self.unit_blocks
        self.active_units += 1
        return True

    def release(self, keys: list[int], private_blocks: int) -> None:
        """Return a request's blocks. Its cached units become evictable in reverse order, so the tail of a
        prompt is evicted before its head (as vLLM's free queue does)."""
        self.private -= private_blocks
        self.free += private_blocks
        refcount = self.refcount
        lru = self._lru
        for key in reversed(keys):
            rc = refcount[key] - 1
            refcount[key] = rc
            if rc == 0:
                self.active_units -= 1
                lru[key] = None

    def check(self) -> None:
        """Assert the pool's invariants (used by tests and the debug mode)."""
        total = self.free + self.private + self.unit_blocks * (self.active_units + len(self._lru))
        assert total == self.capacity, (total, self.capacity)
        assert self.free >= 0 and self.private >= 0 and self.active_units >= 0
        assert sum(1 for rc in self.refcount.values() if rc > 0) == self.active_units
        assert sum(1 for rc in self.refcount.values() if rc == 0) == len(self._lru)
