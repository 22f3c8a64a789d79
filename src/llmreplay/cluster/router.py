"""Request routers: round robin, seeded random, and a KV-aware router (Dynamo's cost function).

KV router cost of worker w for a request of ``isl`` prompt tokens (lower is better), as in Dynamo's
``DefaultWorkerSelector``::

    cost(w) = overlap_score_weight * prefill_blocks(w) + decode_blocks(w)
    prefill_blocks(w) = (queued_prefill_tokens(w) + isl - cached_prefix_tokens(w)) / block_size
    decode_blocks(w)  = KV blocks held by w's running requests

Differences from Dynamo, on purpose: the router reads each engine's cache and load directly (Dynamo's
default synchronous KV events amount to the same), and at ``router_temperature`` 0 ties go to the lowest
worker index instead of a random pick, so runs are reproducible. With temperature > 0 the worker is drawn
from ``softmax(-cost / (temperature * max|cost|))`` with the run's seeded generator.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmreplay.cluster.worker import Worker
from llmreplay.engine.request import Request


class RouterConfig(BaseModel):
    """Router weights; names as Dynamo's ``KvRouterConfig``."""

    model_config = ConfigDict(extra="forbid")

    overlap_score_weight: float = Field(1.0, ge=0, description="Weight of prefill work in the KV router cost.")
    router_temperature: float = Field(0.0, ge=0, description="0: cheapest worker; > 0: softmax sampling.")


class Router(Protocol):
    name: str

    def choose(self, req: Request, workers: list[Worker]) -> Worker: ...


class RoundRobinRouter:
    """Each request to the worker after the last one chosen, in worker order. The position is kept as an index
    into the current list, as Dynamo's replay keeps it (``PoolRoundRobinPlacement::place``: ``index = next %
    len; next = index + 1``), so after the fleet grows the rotation resumes where it was: from 1 worker to 2,
    the next request goes to the new worker. With a fixed fleet this is plain round robin."""

    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(self, req: Request, workers: list[Worker]) -> Worker:
        i = self._next % len(workers)
        self._next = i + 1
        return workers[i]


class RandomRouter:
    name = "random"

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def choose(self, req: Request, workers: list[Worker]) -> Worker:
        return workers[int(self._rng.integers(len(workers)))]


class KvRouter:
    name = "kv"

    def __init__(self, config: RouterConfig, rng: np.random.Generator) -> None:
        self.weight = config.overlap_score_weight
        self.temperature = config.router_temperature
        self._rng = rng

    def cost(self, req: Request, w: Worker) -> float:
        view = w.view
        overlap_tokens = view.cached_prefix_tokens(req.keys)
        prefill_blocks = (view.queued_prefill_tokens + req.isl - overlap_tokens) / view.block_size
        return self.weight * prefill_blocks + view.kv_used_blocks

    def choose(self, req: Request, workers: list[Worker]) -> Worker:
        costs = [self.cost(req, w) for w in workers]
        if self.temperature <= 0:
            return workers[costs.index(min(costs))]
        scale = max(abs(c) for c in costs) or 1.0
        logits = np.asarray([-c / (scale * self.temperature) for c in costs])
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return workers[int(self._rng.choice(len(workers), p=p))]


ROUTERS = ("round_robin", "random", "kv")
ROUTER_ALIASES = {"kv_router": "kv", "roundrobin": "round_robin", "round-robin": "round_robin"}


def make_router(name: str, config: RouterConfig, rng: np.random.Generator) -> Router:
    name = ROUTER_ALIASES.get(name, name)
    if name == "round_robin":
        return RoundRobinRouter()
    if name == "random":
        return RandomRouter(rng)
    if name == "kv":
        return KvRouter(config, rng)
    raise ValueError(name)


__all__ = ["ROUTERS", "KvRouter", "RandomRouter", "RoundRobinRouter", "Router", "RouterConfig", "make_router"]
