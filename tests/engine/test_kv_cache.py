"""KV cache at block granularity (tiny pools, exact counts), like vLLM's block-pool and KV-cache-manager tests:
blocks never exceed capacity, reference counts follow the requests, prefix hits are found and shared, eviction
is least recently freed first (tail of a prompt before its head), and ``free`` returns everything."""

from __future__ import annotations

import random

from llmreplay.engine.kv_cache import BlockPool
from llmreplay.engine.kv_cache_manager import NO_HIT, KVCacheManager
from llmreplay.engine.request import Request

# 4-token engine blocks, 8-token hash blocks: 2 blocks per hash block
BLOCK, HASH_BLOCK = 4, 8


def manager(num_blocks: int, caching: bool = True) -> KVCacheManager:
    return KVCacheManager(num_blocks, BLOCK, HASH_BLOCK, caching)


def request(idx: int, keys: list[int], isl: int | None = None) -> Request:
    return Request(idx, isl if isl is not None else HASH_BLOCK * len(keys) + 1, 4, keys, 0)


def admit(kv: KVCacheManager, req: Request, num_tokens: int | None = None) -> bool:
    """Admit as the scheduler does: the hit is capped at num_tokens - 1, then the whole prompt is allocated."""
    tokens = req.num_tokens if num_tokens is None else num_tokens
    return kv.allocate_new(req, tokens, kv.get_computed_blocks(req, req.num_tokens - 1))


# ----------------------------------------------------------------------------------------------- BlockPool
def test_pool_allocation_is_all_or_nothing() -> None:
    pool = BlockPool(10, blocks_per_hash_block=2, enable_caching=True)
    assert pool.get_new_blocks(7)
    assert not pool.get_new_blocks(4)
    assert (pool.num_free_blocks, pool.num_private_blocks) == (3, 7)
    pool.check()


def test_pool_evicts_least_recently_freed_tail_first() -> None:
    pool = BlockPool(10, blocks_per_hash_block=2, enable_caching=True)
    assert pool.get_new_blocks(6)  # a request's 3 hash blocks
    for key in (1, 2, 3):
        assert pool.cache_full_block(key)
    assert pool.num_used_blocks == 6 and pool.num_private_blocks == 0
    pool.free_blocks([1, 2, 3], 0)
    assert pool.num_used_blocks == 0 and pool.num_evictable_hash_blocks == 3 and pool.num_allocatable_blocks == 10
    assert pool.get_cached_prefix([1, 2, 9], max_hash_blocks=3) == (2, 2)
    pool.touch([1, 2, 9], 2)
    assert pool.num_shared_hash_blocks == 2 and pool.num_evictable_hash_blocks == 1
    assert pool.get_new_blocks(5)  # 4 free: evicts the only evictable hash block, the tail (3)
    assert 3 not in pool.ref_counts and pool.stats.evicted_hash_blocks == 1
    pool.check()


def test_pool_evicting_a_freed_prompt_head_first_breaks_its_prefix_at_once() -> None:
    """``evict_prompt_head_first`` (Dynamo 1.6.1's mocker): a freed prompt's blocks queue for eviction in prompt
    order, so evicting one of them loses the whole cached prefix; tail first (vLLM) keeps the head reusable.
    Reference run: a 24k shared prefix idle 36 s, then reused for 512 tokens by Dynamo, 13,824 by tail-first."""
    for head_first, reused in ((False, 2), (True, 0)):
        pool = BlockPool(6, blocks_per_hash_block=2, enable_caching=True, evict_head_first=head_first)
        assert pool.get_new_blocks(6)
        for key in (1, 2, 3):
            assert pool.cache_full_block(key)
        pool.free_blocks([1, 2, 3], 0)
        assert pool.get_new_blocks(2)  # no free block left: evicts one hash block
        assert pool.get_cached_prefix([1, 2, 3], max_hash_blocks=3)[0] == reused
        pool.check()


def test_a_preempted_prompt_is_freed_tail_first_even_when_finished_ones_go_head_first() -> None:
    """Dynamo 1.6.1's mocker evicts a *finished* prompt head first but a *preempted* one tail first: the agg
    reference run's 39,583-token prompt preempted at ~956 s came back reusing 38,080 of its tokens (its tail
    evicted), where head first would have kept none. With that, the agg closed loop went from 67 % to 98 % of
    the time at Dynamo's replica count."""
    pool = BlockPool(6, blocks_per_hash_block=2, enable_caching=True, evict_head_first=True)
    assert pool.get_new_blocks(6)
    for key in (1, 2, 3):
        assert pool.cache_full_block(key)
    pool.free_blocks([1, 2, 3], 0, tail_first=True)
    assert pool.get_new_blocks(2)  # evicts one hash block: the tail (3)
    assert pool.get_cached_prefix([1, 2, 3], max_hash_blocks=3)[0] == 2
    pool.check()


def test_pool_duplicate_prefix_stays_private() -> None:
    pool = BlockPool(8, blocks_per_hash_block=2, enable_caching=True)
    pool.get_new_blocks(2)
    assert pool.cache_full_block(5)
    pool.get_new_blocks(2)
    assert not pool.cache_full_block(5)  # computed twice concurrently: the second copy is private
    assert pool.num_private_blocks == 2 and pool.num_shared_hash_blocks == 1
    pool.free_blocks([], 2)
    pool.free_blocks([5], 0)
    assert pool.num_free_blocks == 6 and pool.num_evictable_hash_blocks == 1
    pool.check()


def test_pool_without_caching_caches_nothing() -> None:
    pool = BlockPool(8, blocks_per_hash_block=2, enable_caching=False)
    pool.get_new_blocks(4)
    assert not pool.cache_full_block(1)
    assert pool.get_cached_prefix([1], 1) == (0, 0)
    pool.free_blocks([], 4)
    assert pool.num_free_blocks == 8


# ----------------------------------------------------------------------------------------------- manager
def test_allocate_new_holds_the_prompt_and_free_returns_everything() -> None:
    kv = manager(20)
    req = request(0, [11, 12], isl=17)  # 17 tokens: 5 blocks of 4
    assert admit(kv, req)
    assert kv.num_blocks_of(req) == 5 and kv.num_used_blocks == 5
    kv.cache_blocks(req, 17)  # both hash blocks computed: cached, referenced by this request
    assert kv.block_pool.ref_counts == {11: 1, 12: 1}
    kv.check()
    kv.free(req)
    assert kv.num_used_blocks == 0 and kv.num_allocatable_blocks == 20 and not kv.req_to_blocks
    assert kv.block_pool.num_evictable_hash_blocks == 2  # still cached, evictable
    kv.check()


def test_prefix_hit_is_shared_and_counted_once() -> None:
    kv = manager(20)
    first, second = request(0, [11, 12, 13], isl=25), request(1, [11, 12, 99], isl=25)
    assert admit(kv, first)
    kv.cache_blocks(first, 25)
    used = kv.num_used_blocks
    hit = kv.get_computed_blocks(second, second.num_tokens - 1)
    assert (hit.num_hash_blocks, hit.num_evictable) == (2, 0)  # shared with a running request: not evictable
    assert kv.cached_prefix_tokens(second.keys) == 2 * HASH_BLOCK
    assert kv.allocate_new(second, 25, hit)
    # the second holds 7 blocks, 4 of them shared: only 3 new ones are taken
    assert kv.num_blocks_of(second) == 7 and kv.num_used_blocks == used + 3
    assert kv.block_pool.ref_counts[11] == 2 and kv.block_pool.ref_counts[13] == 1
    kv.check()
    kv.free(first)
    assert kv.block_pool.ref_counts == {11: 1, 12: 1, 13: 0}
    kv.free(second)
    assert kv.num_used_blocks == 0
    kv.check()


def test_hit_is_capped_so_the_last_token_is_computed() -> None:
    kv = manager(20)
    first = request(0, [11, 12], isl=16)
    assert admit(kv, first)
    kv.cache_blocks(first, 16)
    again = request(1, [11, 12], isl=16)
    assert kv.get_computed_blocks(again, again.num_tokens - 1).num_hash_blocks == 1


def test_evictable_hits_count_against_what_can_be_allocated() -> None:
    kv = manager(6)  # 3 hash blocks' worth
    first = request(0, [1, 2, 3], isl=24)
    assert admit(kv, first)
    kv.cache_blocks(first, 24)
    kv.free(first)
    assert kv.num_allocatable_blocks == 6
    # hits 1 and 2 (evictable) plus 4 new blocks: taking the hits leaves only 2 allocatable
    second = request(1, [1, 2, 7, 8], isl=32)
    hit = kv.get_computed_blocks(second, 31)
    assert (hit.num_hash_blocks, hit.num_evictable) == (2, 2)
    assert not kv.can_allocate(32, hit)
    assert not kv.allocate_new(second, 32, hit)
    assert not kv.req_to_blocks and kv.block_pool.num_evictable_hash_blocks == 3  # nothing changed
    assert kv.allocate_new(second, 24, hit)  # 2 hits + 2 new blocks: evicts hash block 3, the tail
    assert set(kv.block_pool.ref_counts) == {1, 2}
    kv.check()


def test_allocate_slots_grows_a_running_request_all_or_nothing() -> None:
    kv = manager(5)
    req = request(0, [], isl=30)
    assert kv.allocate_new(req, 8, NO_HIT)  # the first chunk
    assert kv.num_blocks_of(req) == 2
    assert kv.allocate_slots(req, 16)
    assert kv.num_blocks_of(req) == 4
    assert not kv.allocate_slots(req, 30)  # 8 blocks > 5: preempt someone
    assert kv.num_blocks_of(req) == 4 and kv.num_used_blocks == 4
    assert kv.allocate_slots(req, 12)  # already held: no change
    assert kv.num_blocks_of(req) == 4
    kv.check()


def test_duplicate_computation_stays_private_to_the_second_request() -> None:
    kv = manager(20)
    a, b = request(0, [5], isl=9), request(1, [5], isl=9)
    assert admit(kv, a) and admit(kv, b)  # both miss: computed concurrently
    kv.cache_blocks(a, 9)
    kv.cache_blocks(b, 9)
    assert kv.req_to_blocks[0].cached_keys == [5] and kv.req_to_blocks[1].cached_keys == []
    kv.check()
    kv.free(a)
    kv.free(b)
    assert kv.num_used_blocks == 0
    kv.check()


def test_decode_blocks_allocated_in_bulk_are_returned_by_free() -> None:
    kv = manager(10)
    req = request(0, [], isl=8)
    assert kv.allocate_new(req, 8, NO_HIT)
    assert kv.allocate_decode_blocks(3)  # three blocks of generated tokens, for the whole batch
    kv.check(lazy_decode_blocks=True)
    kv.set_num_blocks(req, 5)  # it leaves the decode batch holding them
    kv.check()
    kv.free(req)
    assert kv.num_used_blocks == 0 and kv.num_allocatable_blocks == 10


def test_random_operations_keep_every_invariant() -> None:
    """Admit, grow, cache and free at random on a small pool; after every operation the block and reference
    counts add up, usage never exceeds capacity, and freeing everything returns every block."""
    rng = random.Random(7)
    kv = manager(40)
    running: dict[int, tuple[Request, int]] = {}  # request -> tokens computed so far
    for idx in range(2000):
        op = rng.random()
        if op < 0.4 or not running:
            keys = [rng.randrange(4)] + [rng.randrange(4) * 10 + j for j in range(1, rng.randrange(1, 5))]
            keys = [hash(tuple(keys[: i + 1])) for i in range(len(keys))]  # chained prefix keys
            req = request(idx, keys, isl=rng.randrange(1, HASH_BLOCK * len(keys) + 6))
            hit = kv.get_computed_blocks(req, req.num_tokens - 1)
            computed = hit.num_hash_blocks * HASH_BLOCK
            if kv.allocate_new(req, min(req.num_tokens, computed + rng.randrange(1, 12)), hit):
                running[req.idx] = (req, computed)
        elif op < 0.7:
            req, computed = running[rng.choice(list(running))]
            new_total = min(req.num_tokens, computed + rng.randrange(1, 12))
            if kv.allocate_slots(req, new_total):
                kv.cache_blocks(req, new_total)
                running[req.idx] = (req, new_total)
        else:
            req, _ = running.pop(rng.choice(list(running)))
            kv.free(req)
        kv.check()
        assert kv.num_used_blocks <= kv.num_blocks
    for req, _ in running.values():
        kv.free(req)
    kv.check()
    assert kv.num_used_blocks == 0 and kv.num_allocatable_blocks == kv.num_blocks and not kv.req_to_blocks
    assert kv.block_pool.stats.evicted_hash_blocks > 0  # the pool was small enough to evict
