"""Why requests missed the SLA: one reason each, checked in order, and where they happened."""

from __future__ import annotations

import numpy as np

from llmreplay.metrics import definitions as d
from llmreplay.metrics.misses import REASONS, WorkerQueue, classify, summarise, waiting_at_arrival
from llmreplay.metrics.records import RequestRecords, Status

MS = 1_000_000
DONE, REJ = int(Status.COMPLETED), int(Status.REJECTED)


def _records() -> RequestRecords:
    # arrival, first token, finish (ms), osl, status, preemptions, worker
    rows = [(0, 100, 500, 11, DONE, 0, 0),         # good
            (1000, 3000, 3500, 11, DONE, 0, 0),     # TTFT 2000 > 1500, worker 0 had a queue: queueing
            (2000, 4000, 4500, 11, DONE, 0, 1),     # TTFT miss, worker 1 idle: prefill time
            (3000, 3100, 9100, 11, DONE, 0, 1),     # ITL 600 ms: decode ITL
            (4000, 7000, 9000, 11, DONE, 2, 1),     # preempted (and TTFT miss): preemption first
            (5000, -1, -1, 11, REJ, 0, -1)]         # rejected
    a = np.asarray(rows, dtype=np.int64)
    rec = RequestRecords.empty(np.full(len(rows), 100), a[:, 3].copy(), a[:, 0] * MS, np.arange(len(rows)))
    rec.arrival_ns = a[:, 0] * MS
    rec.first_token_ns = np.where(a[:, 1] >= 0, a[:, 1] * MS, -1)
    rec.finish_ns = np.where(a[:, 2] >= 0, a[:, 2] * MS, -1)
    rec.status = a[:, 4].copy()
    rec.preemptions = a[:, 5].copy()
    rec.worker = a[:, 6].copy()
    return rec


def test_each_missed_request_gets_the_first_reason_that_applies() -> None:
    rec = _records()
    sla = d.Sla(ttft_ms=1500, itl_ms=50)
    j = d.judge(rec, sla, 0)
    queues = {0: WorkerQueue(np.array([500 * MS]), np.array([3])), 1: WorkerQueue(np.array([500 * MS]), np.array([0]))}
    waiting = waiting_at_arrival(rec, {}, queues)
    assert waiting.tolist()[:3] == [0, 3, 0]  # request 0 arrived before worker 0's first step
    reasons = classify(rec, j, sla, waiting)
    assert reasons.tolist() == ["", "queueing before prefill", "prefill time", "decode ITL", "preemption",
                                "rejected"]
    assert set(reasons.tolist()) - {""} <= set(REASONS)


def test_windows_group_the_intervals_where_a_reason_happened() -> None:
    rec = _records()
    reasons = np.array(["", "a", "a", "", "", ""], dtype=object)
    reasons[:] = ["", "prefill time", "prefill time", "", "", "prefill time"]
    out = summarise(reasons, rec, population=6, bin_ns=1000 * MS)
    (m,) = out
    assert m.requests == 3 and m.share == 0.5
    # arrivals at 1 s and 2 s are adjacent intervals: one window of 2; 5 s is two intervals later: its own window
    assert m.windows == [(1.0, 3.0, 2), (5.0, 6.0, 1)]
