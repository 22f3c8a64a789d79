"""Block pool behaviour at block granularity (tiny pools, exact counts), like vLLM's block-pool tests."""

from llmreplay.engine.kv_cache import BlockPool


def test_allocate_is_all_or_nothing() -> None:
    pool = BlockPool(capacity=10, unit_blocks=2, prefix_caching=True)
    assert pool.allocate(7)
    assert not pool.allocate(4)
    assert (pool.free, pool.private) == (3, 7)
    pool.check()


def test_cached_units_are_shared_and_evicted_lru_tail_first() -> None:
    pool = BlockPool(capacity=10, unit_blocks=2, prefix_caching=True)
    assert pool.allocate(6)  # a request's 3 units
    for key in (1, 2, 3):
        assert pool.promote(key)
    assert pool.used == 6 and pool.private == 0
    pool.release([1, 2, 3], 0)
    assert pool.used == 0 and pool.evictable_units == 3 and pool.allocatable == 10
    # a second request hits the first two units
    assert pool.match_prefix([1, 2, 9], max_units=3) == (2, 2)
    pool.acquire_prefix([1, 2, 9], 2)
    assert pool.active_units == 2 and pool.evictable_units == 1
    # needing 5 blocks with 4 free evicts the only evictable unit: the tail (3)
    assert pool.allocate(5)
    assert 3 not in pool.refcount and pool.stats.evicted_units == 1
    pool.check()


def test_release_order_makes_head_outlive_tail() -> None:
    pool = BlockPool(capacity=6, unit_blocks=2, prefix_caching=True)
    pool.allocate(6)
    for key in (10, 11, 12):
        pool.promote(key)
    pool.release([10, 11, 12], 0)
    pool.allocate(2)  # evicts one unit
    assert set(pool.refcount) == {10, 11}
    pool.check()


def test_duplicate_prefix_stays_private() -> None:
    pool = BlockPool(capacity=8, unit_blocks=2, prefix_caching=True)
    pool.allocate(2)
    assert pool.promote(5)
    pool.allocate(2)
    assert not pool.promote(5)  # computed twice concurrently: the second copy is private
    assert pool.private == 2 and pool.active_units == 1
    pool.release([], 2)
    pool.release([5], 0)
    assert pool.free == 6 and pool.evictable_units == 1
    pool.check()


def test_no_prefix_caching_caches_nothing() -> None:
    pool = BlockPool(capacity=8, unit_blocks=2, prefix_caching=False)
    pool.allocate(4)
    assert not pool.promote(1)
    assert pool.match_prefix([1], 1) == (0, 0)
    pool.release([], 4)
    assert pool.free == 8
