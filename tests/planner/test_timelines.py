"""The replica-timeline comparison behind the closed-loop parity numbers (``benchmarks/timelines.py``), checked on
hand-computed cases: a wrong share here would misstate every figure in docs/validation.md's closed-loop section."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "timelines.py"
    spec = importlib.util.spec_from_file_location("timelines", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tl = _load()


def test_timeline_steps_from_start_count_and_drops_events_past_horizon() -> None:
    assert tl.timeline(2, [(10.0, 3), (25.0, 1), (100.0, 8)], 40.0) == [(0.0, 10.0, 2), (10.0, 25.0, 3),
                                                                       (25.0, 40.0, 1)]


def test_simultaneous_events_keep_the_last_ones_count_in_event_order() -> None:
    # two events at one instant: the later one in the list wins, whatever the counts' order
    assert tl.timeline(1, [(5.0, 4), (5.0, 2)], 10.0) == [(0.0, 5.0, 1), (5.0, 10.0, 2)]


def test_same_share_and_first_divergence_hand_computed() -> None:
    # a: 2 on [0,10), 3 on [10,30), 2 on [30,40)      b: 2 on [0,15), 3 on [15,35), 4 on [35,40)
    a = tl.timeline(2, [(10.0, 3), (30.0, 2)], 40.0)
    b = tl.timeline(2, [(15.0, 3), (35.0, 4)], 40.0)
    # same on [0,10) and [15,30): 25 of 40 s; they first differ at 10 s
    assert tl.same_share(a, b, 40.0) == pytest.approx(25 / 40)
    assert tl.first_divergence(a, b) == 10.0
    assert tl.same_share(b, a, 40.0) == pytest.approx(25 / 40)


def test_identical_timelines_agree_everywhere_and_never_diverge() -> None:
    a = tl.timeline(1, [(3.0, 2), (7.5, 1)], 20.0)
    assert tl.same_share(a, a, 20.0) == 1.0
    assert tl.first_divergence(a, a) is None
