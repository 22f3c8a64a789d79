"""Why requests missed the SLA: one primary reason per missed request, and the time windows where each reason
happened — the verdict block's "top reasons".

The reasons, checked in this order (the first that applies is the request's reason):

* ``rejected`` / ``unfinished``: the request never completed (it counts against attainment).
* ``preemption``: it was preempted at least once (its KV was freed and recomputed: TTFT and ITL both suffer).
* ``queueing before prefill``: it missed the TTFT SLA and its (prefill) worker already had requests waiting
  when it arrived — the wait for a slot, not its own prompt, made it late.
* ``prefill time``: it missed the TTFT SLA on a worker with nobody waiting: its own prefill (a long prompt, or a
  batch full of other prefill chunks) took too long.
* ``hand-off wait`` (disagg): it missed the ITL SLA and the KV transfer alone would use more than half of its ITL
  budget over its output, so the hand-off (transfer time and the wait for a decode slot) made it late.
* ``decode ITL``: it missed the ITL SLA otherwise: decode steps were slow (large batches, prefill chunks mixed in).
* ``request latency``: it met TTFT and ITL but missed the E2E SLA.

"Already had requests waiting" is read from the worker's forward-pass metrics (its waiting-queue length at its
last step before the arrival), so it is a per-request attribution, not a simulation of the counterfactual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.cluster.pool import Pool
from llmreplay.metrics import definitions as d
from llmreplay.metrics.records import RequestRecords, Status

I64 = npt.NDArray[np.int64]
BOOL = npt.NDArray[np.bool_]

REASONS = ("rejected", "unfinished", "preemption", "queueing before prefill", "prefill time", "hand-off wait",
           "decode ITL", "request latency")
#: windows listed per reason
MAX_WINDOWS = 3


@dataclass
class WorkerQueue:
    """A worker's waiting-queue length after each of its steps (its forward-pass metrics)."""

    t_end_ns: I64
    num_waiting: I64

    def waiting_at(self, t_ns: I64) -> I64:
        pos = np.searchsorted(self.t_end_ns, t_ns, side="right") - 1
        out = np.zeros(t_ns.shape[0], dtype=np.int64)
        ok = pos >= 0
        out[ok] = self.num_waiting[pos[ok]]
        return out


def waiting_at_arrival(rec: RequestRecords, prefill_queues: dict[int, WorkerQueue],
                       local_queues: dict[int, WorkerQueue]) -> I64:
    """Requests waiting on each request's prefill worker when it arrived: ``prefill_queues`` by
    ``prefill_worker`` id (disagg), ``local_queues`` by ``worker`` id (agg, or disagg prefilled locally)."""
    out = np.zeros(len(rec), dtype=np.int64)
    remote = rec.prefill_worker >= 0
    for queues, ids, sel in ((prefill_queues, rec.prefill_worker, remote),
                             (local_queues, rec.worker, ~remote & (rec.worker >= 0))):
        for wid, q in queues.items():
            m = sel & (ids == wid) & (rec.arrival_ns >= 0)
            if m.any():
                out[m] = q.waiting_at(rec.arrival_ns[m])
    return out


def classify(rec: RequestRecords, judgement: d.SlaJudgement, sla: d.Sla, waiting: I64) -> npt.NDArray[np.object_]:
    """The reason of each request that is in the attainment population and not good ("" for the others);
    ``waiting``: :func:`waiting_at_arrival`."""
    out = np.full(len(rec), "", dtype=object)
    missed = judgement.population & ~judgement.good
    out[missed & (rec.status == Status.REJECTED)] = "rejected"
    out[missed & (rec.status != Status.COMPLETED) & (rec.status != Status.REJECTED)] = "unfinished"
    done = missed & (rec.status == Status.COMPLETED)
    todo = done.copy()

    def assign(mask: BOOL, reason: str) -> None:
        nonlocal todo
        hit = todo & mask
        out[hit] = reason
        todo = todo & ~hit

    assign(rec.preemptions > 0, "preemption")
    ttft_missed = ~judgement.within["ttft_ms"] if "ttft_ms" in judgement.within else np.zeros(len(rec), bool)
    assign(ttft_missed & (waiting > 0), "queueing before prefill")
    assign(ttft_missed, "prefill time")
    if "itl_ms" in judgement.within and sla.itl_ms is not None:
        itl_missed = ~judgement.within["itl_ms"]
        budget_ns = sla.itl_ms * d.NS_PER_MS * np.maximum(rec.osl - 1, 1)
        handoff = (rec.transfer_ns > 0) & (rec.transfer_ns > 0.5 * budget_ns)
        assign(itl_missed & handoff, "hand-off wait")
        assign(itl_missed, "decode ITL")
    assign(todo, "request latency")
    return out


@dataclass
class MissReason:
    reason: str
    requests: int
    share: float  # of the attainment population
    windows: list[tuple[float, float, int]]  # (start s, end s, requests), busiest first


#: empty intervals a window may span before it ends
WINDOW_GAP = 1


def summarise(reasons: npt.NDArray[np.object_], rec: RequestRecords, population: int, bin_ns: int,
              origin_ns: int = 0) -> list[MissReason]:
    """Per reason (most requests first): the count, the share of the population, and the busiest windows —
    runs of intervals (``bin_ns`` wide from ``origin_ns``, at most ``WINDOW_GAP`` empty ones in a row) in which
    requests with that reason arrived."""
    out: list[MissReason] = []
    sent = np.where(rec.arrival_ns >= 0, rec.arrival_ns, rec.trace_arrival_ns)
    for reason in REASONS:
        mask = reasons == reason
        n = int(mask.sum())
        if not n:
            continue
        bins = np.bincount((sent[mask] - origin_ns) // bin_ns)
        windows: list[tuple[float, float, int]] = []
        nz = np.flatnonzero(bins)
        start = 0
        while start < nz.size:
            end = start
            while end + 1 < nz.size and nz[end + 1] <= nz[end] + 1 + WINDOW_GAP:
                end += 1
            a, b = int(nz[start]), int(nz[end])
            windows.append((max(0, origin_ns + a * bin_ns) / d.NS_PER_S, (origin_ns + (b + 1) * bin_ns) / d.NS_PER_S,
                            int(bins[a:b + 1].sum())))
            start = end + 1
        windows.sort(key=lambda w: -w[2])
        out.append(MissReason(reason, n, n / population if population else 0.0, windows[:MAX_WINDOWS]))
    out.sort(key=lambda m: -m.requests)
    return out


def worker_queues(pool: Pool) -> dict[int, WorkerQueue]:
    out: dict[int, WorkerQueue] = {}
    for w in pool.workers:
        f = w.engine.fpm.to_arrays()
        out[w.id] = WorkerQueue(np.asarray(f["t_end_ns"], dtype=np.int64), np.asarray(f["num_waiting"], np.int64))
    return out


def miss_reasons(rec: RequestRecords, judgement: d.SlaJudgement, sla: d.Sla, pools: dict[str, Pool],
                 bin_s: float, origin_s: float = 0.0) -> list[dict[str, Any]]:
    """The ``sla.miss_reasons`` block: :func:`summarise` over :func:`classify`, windows on the report's
    interval grid."""
    local = pools.get("agg") or pools.get("decode")
    waiting = waiting_at_arrival(rec, worker_queues(pools["prefill"]) if "prefill" in pools else {},
                                 worker_queues(local) if local is not None else {})
    reasons = classify(rec, judgement, sla, waiting)
    population = int(judgement.population.sum())
    return [{"reason": m.reason, "requests": m.requests, "share": m.share,
             "windows": [{"start_s": a, "end_s": b, "requests": n} for a, b, n in m.windows]}
            for m in summarise(reasons, rec, population, max(1, round(bin_s * d.NS_PER_S)),
                               round(origin_s * d.NS_PER_S))]
