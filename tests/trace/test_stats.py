"""trace_stats against the figures of the shared traces README, and the prefix-reuse definition."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from llmreplay.trace import load_trace
from llmreplay.trace.model import Trace
from llmreplay.trace.stats import prefix_reuse, render_trace_stats, trace_stats

# file: span s, rate, ISL mean/p50/p99/max, OSL mean/p50/p99/max, CV, most in 1 s, busiest minute req/s,
#       minutes without requests / minutes
README = {
    "mooncake_fast25_conversation_trace.jsonl": (3537.0, 3.40, (12035, 6909, 85400, 126195),
                                                 (343, 350, 1119, 2000), 3.03, 28, 4.12, (0, 59)),
    "mooncake_fast25_synthetic_trace.jsonl": (1022.0, 3.91, (15325, 11587, 66456, 191378),
                                              (149, 69, 768, 893), 1.01, 13, 4.55, (0, 18)),
    "azure_llm_2023_code.csv": (3435.9, 2.57, (2048, 1469, 7436, 7437), (28, 13, 251, 1899),
                                13.15, 67, 10.53, (12, 58)),
    "azure_llm_2023_conv.csv": (3501.7, 5.53, (1155, 1020, 4142, 14050), (211, 129, 601, 1000),
                                1.09, 16, 8.45, (0, 59)),
}
REUSE = {
    "mooncake_fast25_conversation_trace.jsonl": (288_500, 182_790, 36.6),
    "mooncake_fast25_synthetic_trace.jsonl": (121_877, 43_924, 64.0),
}


@pytest.mark.parametrize("name", sorted(README))
def test_stats_match_the_readme(shared_traces: Path, name: str) -> None:
    span, rate, isl, osl, cv, per_s, minute, empty = README[name]
    s = trace_stats(load_trace(shared_traces / name))
    assert round(s["span_s"], 1) == span
    assert round(s["mean_rate_rps"], 2) == rate
    for got, want in ((s["isl"], isl), (s["osl"], osl)):
        assert [round(got[k]) for k in ("mean", "p50", "p99", "max")] == list(want)
    assert round(s["interarrival_cv"], 2) == cv
    assert s["max_requests_in_one_second"] == per_s
    assert round(s["busiest_minute_rps"], 2) == minute
    assert (s["minutes_without_requests"], s["minutes"]) == empty
    json.dumps(s)  # JSON-ready


@pytest.mark.parametrize("name", sorted(REUSE))
def test_prefix_reuse_matches_the_readme(shared_traces: Path, name: str) -> None:
    refs, distinct, share = REUSE[name]
    p = trace_stats(load_trace(shared_traces / name))["prefix"]
    assert (p["block_refs"], p["distinct_blocks"]) == (refs, distinct)
    assert round(100 * p["reused_share"], 1) == share


def test_azure_extras(shared_traces: Path) -> None:
    s = trace_stats(load_trace(shared_traces / "azure_llm_2023_code.csv"))
    assert s["busiest_minute_requests"] == 632
    assert round(s["max_gap_s"]) == 217
    assert s["prefix"]["reused_share"] is None
    conv = trace_stats(load_trace(shared_traces / "mooncake_fast25_conversation_trace.jsonl"))
    assert conv["distinct_arrival_times"] == 1180
    assert conv["timestamp_step_s"] == pytest.approx(3.0, abs=0.01)


def _reference_reuse(blocks: list[list[int]]) -> tuple[int, int]:
    seen: set[int] = set()
    reused = refs = 0
    for b in blocks:
        run = 0
        while run < len(b) and b[run] in seen:
            run += 1
        reused += run
        refs += len(b)
        seen.update(b)
    return reused, refs


def test_prefix_reuse_definition_on_random_blocks() -> None:
    rng = np.random.default_rng(0)
    blocks = [[int(x) for x in rng.integers(0, 12, size=int(rng.integers(0, 6)))] for _ in range(300)]
    # file order differs from arrival order: the definition follows the file (line) order
    order = rng.permutation(300)
    offsets = np.zeros(301, dtype=np.int64)
    offsets[1:] = np.cumsum([len(blocks[i]) for i in order])
    t = Trace(
        arrival_ns=np.arange(300, dtype=np.int64), isl=np.full(300, 4000, dtype=np.int64),
        osl=np.ones(300, dtype=np.int64), hash_offsets=offsets,
        hash_ids=np.array([x for i in order for x in blocks[i]], dtype=np.int64),
        session=np.full(300, -1, dtype=np.int64), delay_ns=np.full(300, -1, dtype=np.int64),
        line=(order + 1).astype(np.int64),
    )
    got = prefix_reuse(t)
    reused, refs = _reference_reuse(blocks)
    assert (got["reused_refs"], got["block_refs"]) == (reused, refs)
    assert got["distinct_blocks"] == len({x for b in blocks for x in b})


def test_tiny_traces() -> None:
    one = Trace(arrival_ns=np.zeros(1, dtype=np.int64), isl=np.ones(1, dtype=np.int64),
                osl=np.ones(1, dtype=np.int64), hash_offsets=np.zeros(2, dtype=np.int64),
                hash_ids=np.zeros(0, dtype=np.int64), session=np.full(1, -1, dtype=np.int64),
                delay_ns=np.full(1, -1, dtype=np.int64), line=np.ones(1, dtype=np.int64))
    s = trace_stats(one)
    assert s["requests"] == 1 and s["mean_rate_rps"] is None and s["interarrival_cv"] is None
    assert s["minutes"] == 1 and s["max_requests_in_one_second"] == 1
    render_trace_stats(s, Console(record=True, width=100))


def test_render(shared_traces: Path) -> None:
    console = Console(record=True, width=140)
    render_trace_stats(trace_stats(load_trace(shared_traces / "mooncake_fast25_conversation_trace.jsonl")),
                       console)
    text = console.export_text()
    for needle in ("12,031", "3.40 req/s", "36.6 %", "0 of 59", "uniform:3.0"):
        assert needle in text
