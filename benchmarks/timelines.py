"""Replica-count timelines and how much two of them agree: the closed-loop comparison of issue #11.

A planner run is reduced to a step function per component: the count it started with, then each scaling event
``(at_s, to_count)``. Two runs agree at an instant when their counts are equal; ``same_share`` is the share of
``[0, horizon)`` where they do. Used by ``benchmarks/test_bench_dynamo_closed_loop.py`` (llmreplay against
Dynamo 1.6.1) and ``scripts/dynamo_sensitivity.py`` (Dynamo against itself under tiny perturbations).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise

Segment = tuple[float, float, int]  # (from_s, to_s, count), half-open [from_s, to_s)


def timeline(start: int, events: Iterable[tuple[float, int]], horizon: float) -> list[Segment]:
    """(from, to, count) segments of a replica count over [0, horizon); events at or after the horizon are
    ignored, several events at one instant leave the last one's count."""
    out: list[Segment] = []
    t, n = 0.0, start
    for at, to in sorted(events, key=lambda e: e[0]):
        if at >= horizon:
            break
        if at > t:
            out.append((t, at, n))
        t, n = at, to
    out.append((t, horizon, n))
    return out


def _pieces(a: list[Segment], b: list[Segment]) -> list[tuple[float, float, int, int]]:
    """The common refinement of two timelines: (from, to, count in a, count in b)."""
    cuts = sorted({x for seg in a + b for x in seg[:2]})
    out = []
    for lo, hi in pairwise(cuts):
        mid = (lo + hi) / 2
        na = next(n for s, e, n in a if s <= mid < e)
        nb = next(n for s, e, n in b if s <= mid < e)
        out.append((lo, hi, na, nb))
    return out


def same_share(a: list[Segment], b: list[Segment], horizon: float) -> float:
    """Share of [0, horizon) during which the two timelines hold the same count."""
    return sum(hi - lo for lo, hi, na, nb in _pieces(a, b) if na == nb) / horizon


def first_divergence(a: list[Segment], b: list[Segment]) -> float | None:
    """The first instant at which the two timelines hold different counts (None: they never do)."""
    return next((lo for lo, _, na, nb in _pieces(a, b) if na != nb), None)

