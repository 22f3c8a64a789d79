"""A worker: one engine replica plus its lifecycle (starting → active → draining → stopped)."""

from __future__ import annotations

from enum import IntEnum

from llmreplay.engine.engine import Engine, EngineView


class State(IntEnum):
    STARTING = 0  # requested by the planner, billed, not routable until startup_time has passed
    ACTIVE = 1
    DRAINING = 2  # takes no new requests, finishes the ones it holds, then stops
    STOPPED = 3


class Worker:
    """Wraps an :class:`Engine` with what the event loop needs: a version number that invalidates the
    engine's scheduled step-end event when a stretch is cut short, and a flag that avoids duplicate kicks.
    Routers and planners read :attr:`view`, what a live engine publishes; only the event loop drives
    :attr:`engine`."""

    __slots__ = ("created_ns", "engine", "gpus", "id", "kick_pending", "pool_name", "state", "stopped_ns", "version",
                 "view")

    def __init__(self, worker_id: int, engine: Engine, gpus: int, pool_name: str, created_ns: int,
                 state: State = State.ACTIVE) -> None:
        self.id = worker_id
        self.engine = engine
        self.view: EngineView = engine.view
        self.gpus = gpus
        self.pool_name = pool_name
        self.state = state
        self.version = 0
        self.kick_pending = False
        self.created_ns = created_ns
        self.stopped_ns = -1
