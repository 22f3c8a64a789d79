"""Engine behaviour: step semantics, chunked prefill, preemption, invariants, fast-forward exactness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmreplay.engine.engine import Engine
from llmreplay.metrics.records import Status

from conftest import FixedStep, LinearStep, make_trace, random_trace, replay

MS = 1_000_000


def test_first_token_is_emitted_by_the_step_that_completes_prefill() -> None:
    r = replay(make_trace([0.0], [100], [5]), FixedStep(0.010)).records
    assert r.first_token_ns[0] == 10 * MS  # one prefill step
    assert r.finish_ns[0] == 50 * MS  # then 4 decode steps, the 5th token finishes it


def test_long_prompt_is_chunked_by_the_token_budget() -> None:
    r = replay(make_trace([0.0], [20_000], [1]), FixedStep(0.010), max_num_batched_tokens=8192).records
    assert r.first_token_ns[0] == 30 * MS  # ceil(20000 / 8192) = 3 steps
    assert r.finish_ns[0] == 30 * MS  # OSL 1 finishes with its first token


def test_requests_arriving_at_one_instant_share_a_step() -> None:
    r = replay(make_trace([0.0, 0.0, 0.0], [100, 100, 100], [2, 2, 2]), FixedStep(0.010)).records
    assert set(r.first_token_ns.tolist()) == {10 * MS}
    assert set(r.finish_ns.tolist()) == {20 * MS}


def test_arrival_mid_step_waits_for_the_next_step_boundary() -> None:
    r = replay(make_trace([0.0, 0.004], [100, 100], [3, 1]), FixedStep(0.010)).records
    assert r.first_token_ns.tolist() == [10 * MS, 20 * MS]


def test_max_num_seqs_limits_the_batch() -> None:
    r = replay(make_trace([0.0, 0.0], [100, 100], [3, 3]), FixedStep(0.010), max_num_seqs=1,
               max_num_batched_tokens=8192).records
    assert r.finish_ns.tolist() == [30 * MS, 60 * MS]


def test_decode_tokens_are_scheduled_before_prefill_chunks() -> None:
    # request 0 decodes while request 1's long prompt is chunked: request 0 still gets a token every step
    r = replay(make_trace([0.0, 0.005], [100, 50_000], [10, 1]), FixedStep(0.010), max_num_seqs=4,
               max_num_batched_tokens=8192).records
    assert r.finish_ns[0] == 100 * MS


def test_prefix_cache_hit_skips_prefill_of_the_cached_blocks() -> None:
    blocks = [[1, 2, 3], [1, 2, 4]]
    tr = make_trace([0.0, 1.0], [1536, 1536], [1, 1], blocks)
    res = replay(tr, LinearStep())
    assert res.records.cached_tokens.tolist() == [0, 1024]
    ttft = res.records.first_token_ns - res.records.arrival_ns
    assert ttft[1] < ttft[0]


def test_prefix_cache_on_schedule_lets_a_request_of_the_same_step_reuse_blocks_being_computed() -> None:
    """``prefix_cache_on_schedule`` (vLLM V1's ``allocate_slots`` caches the blocks a step will fill; Dynamo's
    mocker too): two prompts sharing two 512-token blocks arrive together on a cold engine; the second reuses
    the first's blocks in the step that computes them. Default: only blocks already computed are reused."""
    tr = make_trace([0.0, 0.0], [1536, 1536], [1, 1], [[1, 2, 3], [1, 2, 4]])
    assert replay(tr, LinearStep()).records.cached_tokens.tolist() == [0, 0]
    on = replay(tr, LinearStep(), prefix_cache_on_schedule=True).records
    assert on.cached_tokens.tolist() == [0, 1024]
    ttft = on.first_token_ns - on.arrival_ns
    assert ttft[1] == ttft[0]  # one step: the second prompt's 512 uncached tokens fit beside the first's 1536


def test_full_hit_still_recomputes_the_last_block() -> None:
    tr = make_trace([0.0, 1.0], [1024, 1024], [1, 1], [[1, 2], [1, 2]])
    assert replay(tr).records.cached_tokens.tolist() == [0, 512]  # capped at isl - 1, rounded to blocks


def _checked_engines(monkeypatch: pytest.MonkeyPatch, log: list[int]) -> None:
    """Check every engine invariant after every step."""
    original = Engine.complete

    def complete(self: Engine, now: int):  # type: ignore[no-untyped-def]
        finished = original(self, now)
        self.kv_cache.check(lazy_decode_blocks=self.num_decoding > 0)
        assert self.kv_cache.num_used_blocks <= self.kv_cache.num_blocks
        for req in self.running.values():
            tokens = req.isl + (self.steps - req.decode_origin) if req.phase == 2 else req.num_computed
            assert tokens <= req.isl + req.osl - 1
        log.append(self.kv_cache.num_used_blocks)
        return finished

    monkeypatch.setattr(Engine, "complete", complete)


def test_kv_pressure_preempts_and_every_request_still_completes(monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[int] = []
    _checked_engines(monkeypatch, used)
    tr = random_trace(400, seed=3, rate=40.0)
    res = replay(tr, LinearStep(), num_blocks=900, workers=1)
    rec = res.records
    assert res.pools["agg"].workers[0].engine.preemptions > 0
    assert (rec.status == Status.COMPLETED).all()
    assert max(used) <= 900
    assert rec.preemptions.sum() == res.pools["agg"].workers[0].engine.preemptions
    done = rec.status == Status.COMPLETED
    assert (rec.arrival_ns[done] <= rec.first_token_ns[done]).all()
    assert (rec.first_token_ns[done] <= rec.finish_ns[done]).all()


@pytest.mark.parametrize("mode", ["lifo", "fifo"])
def test_preemption_modes_both_conserve_requests(mode: str) -> None:
    res = replay(random_trace(300, seed=5, rate=40.0), num_blocks=800, preemption_mode=mode)
    assert (res.records.status == Status.COMPLETED).all()


@pytest.mark.parametrize(
    ("router", "blocks", "workers"),
    [("round_robin", 100_000, 2), ("kv", 100_000, 3), ("kv", 900, 2), ("random", 1200, 2)],
)
def test_fast_forward_equals_step_by_step_reference(router: str, blocks: int, workers: int) -> None:
    tr = random_trace(2500, seed=11, rate=10.0, osl_max=150)
    fast = replay(tr, LinearStep(), workers=workers, num_blocks=blocks, router=router)
    ref = replay(tr, LinearStep(), workers=workers, num_blocks=blocks, router=router, fast_forward=False)
    for col in ("first_token_ns", "finish_ns", "worker", "cached_tokens", "preemptions"):
        np.testing.assert_array_equal(getattr(fast.records, col), getattr(ref.records, col), err_msg=col)
    assert fast.steps == ref.steps
    assert fast.events < ref.events / 5  # and it is what makes the replay fast


def test_fast_forward_emits_one_fpm_record_per_stretch() -> None:
    res = replay(make_trace([0.0], [100], [1000]), FixedStep(0.001))
    fpm = res.pools["agg"].workers[0].engine.fpm.to_arrays()
    assert fpm["steps"].sum() == 1000
    assert len(fpm["steps"]) < 5
    stretch = int(np.argmax(fpm["steps"]))
    n = int(fpm["steps"][stretch])
    assert fpm["decode_kv_last"][stretch] - fpm["decode_kv_first"][stretch] == n - 1


def test_horizon_leaves_requests_unfinished_and_accounted() -> None:
    tr = make_trace([0.0, 0.0, 5.0], [100, 100, 100], [1000, 10, 10])
    res = replay(tr, FixedStep(0.010), horizon_s=1.0)
    assert res.records.status.tolist() == [Status.UNFINISHED, Status.COMPLETED, Status.UNFINISHED]
    assert res.horizon_ns == 1_000_000_000


def test_request_that_can_never_fit_is_rejected_with_a_reason() -> None:
    tr = make_trace([0.0, 0.1], [100, 5000], [10, 10])
    res = replay(tr, num_blocks=100, block_size=16)  # 1,600 tokens of KV
    rec = res.records
    assert rec.status.tolist() == [Status.COMPLETED, Status.REJECTED]
    assert rec.counts()["rejected_by_reason"] == {"exceeds_kv_capacity": 1}


def test_sessions_release_the_next_turn_after_the_previous_finishes_plus_delay() -> None:
    tr = make_trace([0.0, 0.0], [100, 100], [10, 1], session=[0, 0], delay_s=[-1, 2.0])
    rec = replay(tr, FixedStep(0.010)).records
    assert rec.finish_ns[0] == 100 * MS
    assert rec.arrival_ns[1] == 100 * MS + 2_000 * MS


def test_closed_loop_keeps_n_requests_in_flight() -> None:
    tr = make_trace([0.0, 50.0, 90.0, 99.0], [100] * 4, [1] * 4)
    rec = replay(tr, FixedStep(0.010), concurrency=1, max_num_seqs=4).records
    assert rec.arrival_ns.tolist() == [0, 10 * MS, 20 * MS, 30 * MS]  # timestamps ignored


def test_waiting_queue_is_what_a_vllm_fpm_publishes() -> None:
    """Queued prefill = fresh waiting requests (whole prompts); queued decode = preempted ones (prompt +
    generated); a running request's unprefilled remainder is not queued (Dynamo's mocker ``compute_fpm``)."""
    from llmreplay.engine.config import parse_engine_args
    from llmreplay.engine.request import Request
    from llmreplay.metrics.histogram import LogHistogram

    args = parse_engine_args({"max_num_seqs": 1, "max_num_batched_tokens": 1000}, source="test")
    eng = Engine(0, args, FixedStep(0.010), num_blocks=10_000, hash_block_tokens=16, token_gaps=LogHistogram())
    for i, isl in enumerate((5000, 300, 700)):
        eng.add(Request(i, isl, 4, [], 0))
    end = eng.plan(0)  # admits request 0 only (max_num_seqs 1): a 1000-token chunk of its 5000
    assert end is not None
    assert eng.view.waiting_queue() == (2, 1000, 0, 0)
    assert eng.view.queued_prefill_tokens == 6000  # our own gauge counts the running request's prompt too
    eng.complete(end)
    eng._preempt(eng.running[0], end, step_allocated=False)  # back to the queue's front, to recompute
    assert eng.view.waiting_queue() == (2, 1000, 1, 5000)


def test_block_openings_in_closed_form_count_what_each_step_opens() -> None:
    """A fast-forwarded stretch takes its KV block counts from a closed form (no per-step array): for any mix of
    block phases, the blocks opened by steps 0..s-1 and the last step a block budget reaches must equal a
    step-by-step count (a request of phase p opens a block at every step s with s % block_size == p)."""
    from llmreplay.engine.engine import _BlockOpenings

    rng = np.random.default_rng(7)
    for block_size in (1, 2, 16, 64):
        for _ in range(40):
            counts = rng.integers(0, 4, block_size).tolist()
            if not sum(counts):
                counts[int(rng.integers(block_size))] = 1
            opened = np.cumsum([0] + [counts[s % block_size] for s in range(6 * block_size + 5)])
            prefix = [0, *np.cumsum(counts[:-1]).tolist()]
            openings = _BlockOpenings(sum(counts), block_size, prefix)
            assert [openings.before(s) for s in range(len(opened))] == opened.tolist()
            for budget in range(int(opened[-block_size])):
                assert openings.last_step_within(budget) == int(np.searchsorted(opened, budget, side="right")) - 1


@pytest.mark.parametrize("gate", [False, True])
def test_admit_whole_prompt_waits_for_room_for_the_prompt_instead_of_preempting_later(gate: bool) -> None:
    """Dynamo's mocker admits a waiting request only when the free KV blocks hold its whole prompt
    (``decide_waiting_admission``); vLLM takes blocks for the scheduled chunk only. 100 blocks of 16 tokens: A
    (1,000-token prompt, 200 output tokens, 75 blocks at the end) runs; B's 1,000-token prompt (63 blocks) fits
    only in part beside it. vLLM's way admits B's first chunk and preempts later; the mocker's gate keeps B
    waiting until A is done."""
    tr = make_trace([0.0, 0.0], [1000, 1000], [200, 2])
    rec = replay(tr, FixedStep(0.010), num_blocks=100, block_size=16, max_num_batched_tokens=1200,
                 admit_whole_prompt=gate).records
    assert (rec.status == Status.COMPLETED).all()
    if gate:
        assert rec.preemptions.sum() == 0
        assert rec.first_token_ns[1] > rec.finish_ns[0]  # B waited for A
    else:
        assert rec.preemptions.sum() > 0


def test_preemption_frees_tail_first_under_evict_prompt_head_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine frees a preempted request's blocks tail first (``tail_first``), a finished one's in the
    pool's order: with ``evict_prompt_head_first`` a preempted prompt keeps its head reusable."""
    from llmreplay.engine.kv_cache_manager import KVCacheManager

    calls: list[bool] = []
    orig = KVCacheManager.free

    def free(self: KVCacheManager, req: object, tail_first: bool = False) -> None:
        calls.append(tail_first)
        orig(self, req, tail_first)  # type: ignore[arg-type]

    monkeypatch.setattr(KVCacheManager, "free", free)
    tr = make_trace([0.0, 0.0], [1000, 1000], [200, 2])
    rec = replay(tr, FixedStep(0.010), num_blocks=100, block_size=16, max_num_batched_tokens=1200,
                 evict_prompt_head_first=True).records
    assert rec.preemptions.sum() > 0 and (rec.status == Status.COMPLETED).all()
    assert calls.count(True) == rec.preemptions.sum() and calls.count(False) == 2


@pytest.mark.parametrize("gate", [False, True])
def test_admit_whole_prompt_from_the_command_line(tmp_path: Path, gate: bool) -> None:
    """The same two requests through ``llmreplay run --extra-engine-args``: with the mocker's admission gate
    the report counts no preemption, without it some."""
    from typer.testing import CliRunner

    from llmreplay.cli.app import app

    trace = tmp_path / "t.jsonl"
    trace.write_text("".join(json.dumps({"timestamp": 0, "input_length": 1000, "output_length": o}) + "\n"
                             for o in (200, 2)))
    engine = {"num_gpu_blocks": 100, "block_size": 16, "max_num_batched_tokens": 1200, "admit_whole_prompt": gate}
    out = tmp_path / "r.json"
    res = CliRunner().invoke(app, ["run", str(trace), "--extra-engine-args", json.dumps(engine), "--report-json",
                                   str(out), "--quiet", "--no-progress"])
    assert res.exit_code == 0, res.output
    found: list[int] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                if k == "preemptions" and isinstance(v, int):
                    found.append(v)
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(json.loads(out.read_text()))
    assert found and ((sum(found) == 0) if gate else (sum(found) > 0))
