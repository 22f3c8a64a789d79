"""Each metric's definition, at the granularity of a few hand-made requests: the formula, the warm-up rule, the
single-output-token rule and the one display rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmreplay.metrics import definitions as d
from llmreplay.metrics.histogram import LogHistogram
from llmreplay.metrics.records import RequestRecords, Status
from llmreplay.metrics.summary import compute_metrics, compute_sla
from llmreplay.metrics.timeseries import latency_cdf

MS = 1_000_000


def records(rows: list[tuple[int, int, int, int, int, int]]) -> RequestRecords:
    """``rows``: (arrival ms, first token ms, finish ms, isl, osl, status); times -1 when not applicable."""
    a = np.asarray(rows, dtype=np.int64)
    rec = RequestRecords.empty(a[:, 3].copy(), a[:, 4].copy(), np.where(a[:, 0] >= 0, a[:, 0] * MS, 0),
                               np.arange(len(rows), dtype=np.int64))
    rec.arrival_ns = np.where(a[:, 0] >= 0, a[:, 0] * MS, -1)
    rec.first_token_ns = np.where(a[:, 1] >= 0, a[:, 1] * MS, -1)
    rec.finish_ns = np.where(a[:, 2] >= 0, a[:, 2] * MS, -1)
    rec.status = a[:, 5].copy()
    return rec


DONE, REJ, UNF = int(Status.COMPLETED), int(Status.REJECTED), int(Status.UNFINISHED)


def test_per_request_formulas_follow_aiperf() -> None:
    rec = records([(0, 100, 1100, 50, 11, DONE), (10, 30, 30, 20, 1, DONE), (20, -1, -1, 5, 5, REJ)])
    np.testing.assert_allclose(d.TTFT.per_request(rec), [100, 20, np.nan])
    np.testing.assert_allclose(d.ITL.per_request(rec), [100, np.nan, np.nan])  # (1100 − 100) / (11 − 1)
    np.testing.assert_allclose(d.REQUEST_LATENCY.per_request(rec), [1100, 20, np.nan])
    assert d.request_itl_ms(0, 10 * MS, 1) is None and d.request_itl_ms(0, 10 * MS, 2) == 10.0


def test_single_output_token_request_is_judged_on_its_ttft() -> None:
    """Dynamo's view (judge what is defined), not AIPerf's (OSL < 2 is never good under an ITL SLO)."""
    rec = records([(0, 100, 100, 50, 1, DONE),      # one token, TTFT 100 ms: within the SLA
                   (0, 900, 900, 50, 1, DONE),      # one token, TTFT 900 ms: misses TTFT
                   (0, 100, 1100, 50, 11, DONE),    # ITL 100 ms: misses ITL
                   (0, 100, 200, 50, 11, DONE)])    # ITL 10 ms: good
    j = d.judge(rec, d.Sla(ttft_ms=500, itl_ms=50), 0)
    assert j.good.tolist() == [True, False, False, True]
    assert j.within["itl_ms"].tolist() == [True, True, False, True]
    sla = compute_sla(d.Sla(ttft_ms=500, itl_ms=50), j, 1.0)
    assert sla["attainment"] == 0.5 and sla["within_ttft"] == 0.75 and sla["within_itl"] == 0.75
    # the deviation from AIPerf is written in the definition a user reads
    assert "AIPerf" in d.SLA_ATTAINMENT.doc and "single output token" in d.SLA_ATTAINMENT.doc


def test_attainment_counts_requests_that_never_finished() -> None:
    rec = records([(0, 100, 200, 50, 11, DONE), (5, -1, -1, 50, 11, REJ), (6, -1, -1, 50, 11, UNF),
                   (7, 100, 200, 50, 11, DONE)])
    j = d.judge(rec, d.Sla(ttft_ms=1000), 0)
    assert compute_sla(d.Sla(ttft_ms=1000), j, 1.0)["attainment"] == 0.5


def test_warmup_leaves_the_same_requests_out_of_statistics_cdf_and_attainment() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(200):
        arrival = i * 10
        ttft = int(rng.integers(10, 3000)) if i >= 50 else 50_000  # warm-up requests: huge TTFT
        rows.append((arrival, arrival + ttft, arrival + ttft + 500, 100, 11, DONE))
    rec = records(rows)
    warmup = 500 * MS  # the first 50 requests
    m = compute_metrics(rec, LogHistogram(), None, None, warmup)
    cdf = latency_cdf(rec, warmup)
    assert cdf["ttft_ms"] is not None
    assert cdf["ttft_ms"][0] == pytest.approx(m["ttft_ms"]["min"], abs=1e-3)
    assert cdf["ttft_ms"][100] == pytest.approx(m["ttft_ms"]["max"], abs=1e-3) and m["ttft_ms"]["max"] < 50_000
    assert cdf["ttft_ms"][90] == pytest.approx(m["ttft_ms"]["p90"], abs=1e-3)
    j = d.judge(rec, d.Sla(ttft_ms=60_000), warmup)
    assert int(j.population.sum()) == 150 and int(j.good.sum()) == 150
    assert m["latency_requests"] == 150


def test_one_display_rule() -> None:
    assert d.SLA_ATTAINMENT.format(0.87299) == "87.2 %"  # truncated: never reads as more than achieved
    assert d.SLA_ATTAINMENT.format(0.8997) == "89.9 %"
    assert d.SLA_ATTAINMENT.format(1.0) == "100.0 %"
    assert d.TTFT.format(1387.456) == "1,387.46" and d.TTFT.format(1387.456, with_unit=True) == "1,387.46 ms"
    assert d.TTFT.format(None) == "—" and d.TTFT.format(math.nan) == "—"


def test_every_metric_has_a_definition_a_reader_can_use() -> None:
    for m in d.ALL_METRICS.values():
        assert m.tag and m.header and m.unit and m.doc
        assert (m.compute is not None) == (m in d.RECORD_METRICS)
    with pytest.raises(TypeError):
        d.GOODPUT.per_request(records([(0, 1, 2, 1, 1, DONE)]))
