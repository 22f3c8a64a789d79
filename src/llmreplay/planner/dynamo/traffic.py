"""The frontend traffic window Dynamo's planner reads on a throughput tick, as Dynamo 1.6.1's replay builds it.

The mocker's replay drains a ``TrafficAccumulator`` at every planner tick (``lib/mocker`` offline replay,
``TrafficStats``: ``num_req`` counts the requests that *arrived* in the window, ``avg_isl`` / ``avg_osl`` are
means over the requests that *completed* in it, ``shape_count`` of them), and the Python adapter merges the
per-tick windows into one per throughput interval weighting the shape means by ``shape_count``
(``dynamo/planner/offline/replay_adapter.py`` ``_merge_traffic``, read in ``_build_tick_input``). The merge of
count-weighted means is the mean over all completions of the interval, so one window per interval is exact.

A window is ``(previous tick, this tick]``: everything that happens at the tick's own instant (arrivals and
completions) is settled before the planner reads it (Dynamo's ``PlannerTickMetrics``: "the runtime has already
advanced the clock to now_ms and settled all same-timestamp work"). Verified on the reference runs: every one of
the 710 recorded windows of the agg conversation hour equals this rule applied to the run's per-request
arrival and completion times (``docs/validation.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmreplay.planner.dynamo.policy import Traffic


@dataclass
class TrafficWindow:
    """Counters since the last throughput tick."""

    arrivals: int = 0
    completed: int = 0
    isl_sum: int = 0
    osl_sum: int = 0
    cached_tokens: int = 0  # prompt tokens the completed requests found in a prefix cache

    def arrived(self) -> None:
        self.arrivals += 1

    def finished(self, isl: int, osl: int, cached: int = 0) -> None:
        self.completed += 1
        self.isl_sum += isl
        self.osl_sum += osl
        self.cached_tokens += max(cached, 0)

    @property
    def prefix_hit_rate(self) -> float:
        """Cached share of the completed requests' prompt tokens (what a KV router reports)."""
        return self.cached_tokens / self.isl_sum if self.isl_sum else 0.0

    def traffic(self, duration_s: float, kv_hit_rate: float) -> Traffic | None:
        """Dynamo's ``TrafficObservation`` over the window, or None for an empty span (Dynamo passes no
        traffic when the window's duration is 0). ISL and OSL are 0 when nothing completed (Dynamo's
        ``drain``); Dynamo's load predictors take that 0 as a data point unless no request arrived either
        (``BuiltinLoadPredict._observe_load``, :mod:`llmreplay.planner.dynamo.predictors`)."""
        if duration_s <= 0:
            return None
        n = self.completed
        return Traffic(duration_s=duration_s, num_req=float(self.arrivals),
                       isl=self.isl_sum / n if n else 0.0, osl=self.osl_sum / n if n else 0.0,
                       kv_hit_rate=kv_hit_rate)
