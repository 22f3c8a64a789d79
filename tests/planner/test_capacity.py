"""Engine capacity maths (pure functions), including the regressions behind Dynamo's planner fixes."""

from __future__ import annotations

import math

from llmreplay.planner.capacity import agg_capacity, decode_capacity, prefill_capacity, prefill_time


def linear_agg(prefill: float, kv: float, prompt: float) -> float:
    return 0.004 + 1.5e-5 * prefill + 5e-8 * kv + 1e-10 * prefill * prompt / 2


def test_agg_worked_example_max_batch_29_not_2() -> None:
    # ISL 8844, OSL 173, MBT 8192, KV 262,144 tokens: kv_cap = floor(262144 / 9017) = 29
    c = agg_capacity(0.050, 8844, 173, 8192, 262_144, 256, linear_agg)
    assert c.batch == 29
    expected_step = linear_agg(min(8192 - 29, math.ceil(29 * 8844 / 173)), 29 * (8844 + 173 / 2), 8844)
    assert math.isclose(c.step_s, expected_step)
    assert math.isclose(c.rps, 29 / (173 * expected_step))


def test_agg_batch_is_lowered_while_the_step_breaks_the_itl_sla() -> None:
    slow = agg_capacity(0.020, 8844, 173, 8192, 262_144, 256, linear_agg)
    assert slow.batch < 29
    assert slow.step_s <= 0.020


def test_agg_balance_caps_the_batch_when_prefill_cannot_keep_up() -> None:
    # ISL 4000, OSL 2: admission keeps up only while 4000 / (MBT - x) <= 2, i.e. x <= MBT - 2000
    c = agg_capacity(10.0, 4000, 2, 2100, 10**9, 10_000, lambda p, k, L: 0.01)
    assert c.batch == 100


def test_prefill_capacity_chunks_long_prompts_and_never_asks_beyond_mbt() -> None:
    asked: list[float] = []

    def step(tokens: float, ctx: float) -> float:
        asked.append(tokens)
        return 0.001 + tokens * 1e-5

    t = prefill_time(20_000, 8192, step)
    assert asked == [8192, 8192, 20_000 - 2 * 8192]  # ceil(20000 / 8192) = 3 passes
    assert max(asked) <= 8192
    assert math.isclose(t, 3 * 0.001 + 20_000 * 1e-5)
    assert math.isclose(prefill_capacity(20_000, 8192, step).rps, 1 / t)


def test_decode_capacity_uses_engine_capabilities() -> None:
    step = lambda n, kv: 0.005 + 1e-4 * n + 1e-8 * kv  # noqa: E731
    # KV capacity 100k tokens, context isl + osl/2 = 1100 -> at most 90 requests; max_num_seqs 256
    c = decode_capacity(1.0, 1000, 200, 100_000, 256, step)
    assert c.batch == 90
    assert decode_capacity(1.0, 1000, 200, 100_000, 32, step).batch == 32
    # the ITL SLA binds: largest b with 0.005 + 1e-4 b + 1.1e-5 b <= 0.010 -> b = 45
    assert decode_capacity(0.010, 1000, 200, 100_000, 256, step).batch == 45
