"""The search finds what replaying every deployment would find, with fewer replays, on any executor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recutil import ENGINE, GOAL, SLA, SPACE, write_small_trace

from llmreplay.config import build_run_config
from llmreplay.cost.prices import load_gpu_prices
from llmreplay.recommend.search import SearchOutcome, _Knowledge, recommend
from llmreplay.recommend.space import Deployment, SearchSpace, expand_lines
from llmreplay.runner import run


@pytest.fixture(scope="module")
def small_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_small_trace(tmp_path_factory.mktemp("trace"))


def _search(trace: Path, executor: str = "local", **space: Any) -> SearchOutcome:
    return recommend(str(trace), engine_args=ENGINE, space=SearchSpace.model_validate({**SPACE, **space}),
                     prices=load_gpu_prices(None), goal=GOAL, executor=executor, jobs=2, **SLA)


@pytest.fixture(scope="module")
def exhaustive(small_trace: Path) -> dict[Deployment, float]:
    """Every deployment of the space replayed on the whole trace, independently of the search code."""
    space = SearchSpace.model_validate(SPACE)
    out: dict[Deployment, float] = {}
    for line in expand_lines(space, ENGINE, "round_robin", (SLA["sla_ttft_ms"], SLA["sla_itl_ms"])):
        for d in line.points:
            values = d.run_values(ENGINE, {"trace": str(small_trace.resolve()), **SLA, "seed": 0})
            out[d] = run(build_run_config(values)).report["sla"]["attainment"]
    return out


@pytest.fixture(scope="module")
def searched(small_trace: Path) -> SearchOutcome:
    return _search(small_trace)


def _best(attainment: dict[Deployment, float]) -> Deployment:
    prices = load_gpu_prices(None)
    ok = [d for d, a in attainment.items() if a >= GOAL]
    return min(ok, key=lambda d: (round(d.cost_per_hour(prices), 9), d.gpus, -attainment[d]))


def test_search_equals_exhaustive_sweep(searched: SearchOutcome, exhaustive: dict[Deployment, float]) -> None:
    assert searched.winner is not None
    assert searched.winner.deployment == _best(exhaustive)
    assert searched.winner.attainment == exhaustive[searched.winner.deployment]
    # every whole-trace replay of the search is the same replay as the exhaustive one
    for ev in searched.confirmed:
        assert ev.attainment == exhaustive[ev.deployment]


def test_every_pruning_rule_is_exercised(searched: SearchOutcome, exhaustive: dict[Deployment, float]) -> None:
    s = searched.stats
    assert s.space == len(exhaustive) == 32
    assert s.replays["screen"] > 0, "the screen ran"
    assert s.inferred > 0, "monotone inference decided deployments without replaying them"
    assert s.pruned_by_cost > 0, "deployments costlier than a passing one were never confirmed"
    assert s.replays["full"] < len(exhaustive) / 2, "the confirm stage replays a fraction of the space"
    # binary search: some line settled without replaying every count below its answer
    lines = expand_lines(SearchSpace.model_validate(SPACE), ENGINE, "round_robin",
                         (SLA["sla_ttft_ms"], SLA["sla_itl_ms"]))
    screened = {e.deployment for e in searched.evaluations if e.stage == "screen"}
    assert any(len([d for d in line.points if d in screened]) < len(line.points) - 1 for line in lines)


def test_monotone_inference_holds_on_the_replays(exhaustive: dict[Deployment, float]) -> None:
    """What the search assumes: under round robin, attainment does not fall as a pool gains workers (agg
    workers; disagg prefill and decode workers each)."""
    by_group: dict[tuple[Any, ...], dict[tuple[int, int], float]] = {}
    for d, a in exhaustive.items():
        key = (d.gpu, d.weights, d.topology)
        point = (0, d.workers) if d.topology == "agg" else (d.prefill, d.decode)
        by_group.setdefault(key, {})[point] = a
    for points in by_group.values():
        for (p, n), a in points.items():
            for (p2, n2), a2 in points.items():
                if p2 >= p and n2 >= n:
                    assert a2 >= a, (p, n, a, p2, n2, a2)


@pytest.fixture
def local_ray() -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'llmreplay[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_identical_answer(local_ray: Any, small_trace: Path, searched: SearchOutcome) -> None:
    on_ray = _search(small_trace, executor="ray")
    assert on_ray.winner is not None and searched.winner is not None
    assert on_ray.winner.deployment == searched.winner.deployment
    assert on_ray.winner.attainment == searched.winner.attainment
    assert sorted((e.deployment.label(), e.stage, e.attainment) for e in on_ray.evaluations) == \
        sorted((e.deployment.label(), e.stage, e.attainment) for e in searched.evaluations)


def test_no_monotonicity_note_on_round_robin(searched: SearchOutcome) -> None:
    assert searched.notes == []


def test_a_monotonicity_violation_is_reported() -> None:
    """If a larger fleet fails where a smaller one passed, inference could be wrong: the search says so."""
    k = _Knowledge()
    group = ("h100_sxm", 1, "bf16", "kv", "disagg")
    k.add(group, 1, 1, True)
    k.add(group, 2, 1, False)
    k.add(group, 0, 0, False)
    assert k.violations() == [(group, (1, 1), (2, 1))]
    assert k.status(group, 2, 2) is True  # a direct pass still implies the larger fleets pass
