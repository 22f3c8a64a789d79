"""Slicing, speed-up and arrival jitter: window rules, sessions, rounding, determinism."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmreplay.errors import InputError
from llmreplay.trace import load_trace
from llmreplay.trace.model import Trace
from llmreplay.trace.transform import jitter_arrivals, parse_jitter, slice_trace, speed_up, take_rows

S = 1_000_000_000


def session_trace() -> Trace:
    """Two sessions (0: t=0,10,20 s; 1: t=5,15 s) and two single requests (t=12, 30 s), with blocks."""
    arrival = np.array([0, 5, 10, 12, 15, 20, 30], dtype=np.int64) * S
    session = np.array([0, 1, 0, -1, 1, 0, -1], dtype=np.int64)
    delay = np.array([-1, -1, 2, -1, 3, 4, -1], dtype=np.int64) * S
    delay[delay < 0] = -1
    blocks = [[1], [2], [1, 3], [], [2, 4], [1, 3, 5], [9]]
    offsets = np.zeros(8, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blocks])
    return Trace(
        arrival_ns=arrival, isl=np.full(7, 2000, dtype=np.int64), osl=np.arange(1, 8, dtype=np.int64),
        hash_offsets=offsets, hash_ids=np.array([x for b in blocks for x in b], dtype=np.int64),
        session=session, delay_ns=delay, line=np.arange(1, 8, dtype=np.int64),
    )


def test_take_rows_gathers_csr_blocks() -> None:
    t = session_trace()
    out = take_rows(t, np.array([5, 0, 3]))
    assert [out.blocks_of(i).tolist() for i in range(3)] == [[1, 3, 5], [1], []]
    assert out.osl.tolist() == [6, 1, 4]


def test_slice_window_keeps_turns_by_their_own_arrival() -> None:
    t = session_trace()
    out = slice_trace(t, 8.0, 10.0, None)  # [8, 18) s
    assert out.line.tolist() == [3, 4, 5]  # t = 10, 12, 15
    assert out.arrival_ns.tolist() == [0, 2 * S, 5 * S]
    # both sessions' first turns fell before the window: their first kept turns become first turns
    assert out.delay_ns.tolist() == [-1, -1, -1]
    assert out.session.tolist() == [0, -1, 1]
    assert [out.blocks_of(i).tolist() for i in range(3)] == [[1, 3], [], [2, 4]]
    assert "kept 3 of 7" in out.notes[-1]


def test_slice_keeps_delays_of_later_turns_inside_the_window() -> None:
    out = slice_trace(session_trace(), None, 16.0, None)  # [0, 16) s
    assert out.line.tolist() == [1, 2, 3, 4, 5]
    assert out.delay_ns.tolist() == [-1, -1, 2 * S, -1, 3 * S]


def test_slice_max_requests_after_window() -> None:
    t = session_trace()
    out = slice_trace(t, 4.0, None, 2)
    assert out.line.tolist() == [2, 3]
    assert out.arrival_ns.tolist() == [0, 5 * S]
    assert len(slice_trace(t, None, None, 100)) == 7


def test_slice_counts_from_first_arrival_not_zero() -> None:
    t = session_trace()
    t.arrival_ns = t.arrival_ns + 100 * S  # a trace that does not start at 0
    assert slice_trace(t, 8.0, 10.0, None).line.tolist() == [3, 4, 5]


def test_slice_can_be_empty() -> None:
    assert len(slice_trace(session_trace(), 1000.0, None, None)) == 0


@pytest.mark.parametrize(("start", "duration", "maxr"), [(-1.0, None, None), (None, 0.0, None),
                                                         (None, None, 0), (float("nan"), None, None)])
def test_slice_rejects_bad_arguments(start: float | None, duration: float | None, maxr: int | None) -> None:
    with pytest.raises(InputError):
        slice_trace(session_trace(), start, duration, maxr)


def test_slice_real_trace_matches_a_mask(shared_traces: Path) -> None:
    t = load_trace(shared_traces / "azure_llm_2023_conv.csv")
    out = slice_trace(t, 600.0, 300.0, None)
    mask = (t.arrival_ns >= 600 * S) & (t.arrival_ns < 900 * S)
    assert len(out) == int(mask.sum())
    np.testing.assert_array_equal(out.line, t.line[mask])
    assert out.arrival_ns[0] == 0


def test_speed_up_divides_arrivals_and_delays() -> None:
    t = session_trace()
    out = speed_up(t, 2.0)
    assert out.arrival_ns.tolist() == (t.arrival_ns // 2).tolist()
    assert out.delay_ns.tolist() == [-1, -1, S, -1, 3 * S // 2, 2 * S, -1]
    out3 = speed_up(t, 3.0)
    assert out3.arrival_ns[1] == round(5 * S / 3)
    assert speed_up(t, 1.0).arrival_ns.tolist() == t.arrival_ns.tolist()
    # the input is not modified
    assert t.arrival_ns[1] == 5 * S


@pytest.mark.parametrize("ratio", [0.0, -1.0, float("inf"), float("nan")])
def test_speed_up_rejects_bad_ratio(ratio: float) -> None:
    with pytest.raises(InputError, match="must be a number > 0"):
        speed_up(session_trace(), ratio)


def test_parse_jitter() -> None:
    assert parse_jitter("uniform:3.0") == 3.0
    assert parse_jitter("uniform:2") == 2.0
    assert parse_jitter(" Uniform: 0.5s ") == 0.5
    assert parse_jitter("none") == 0.0
    for bad in ("normal:3", "uniform:", "uniform:-1", "3", "uniform:abc"):
        with pytest.raises(InputError, match="uniform:S"):
            parse_jitter(bad)


def test_jitter_spreads_within_the_window_and_is_deterministic(shared_traces: Path) -> None:
    t = load_trace(shared_traces / "mooncake_fast25_conversation_trace.jsonl")
    a = jitter_arrivals(t, "uniform:3.0", seed=7)
    b = jitter_arrivals(t, "uniform:3.0", seed=7)
    c = jitter_arrivals(t, "uniform:3.0", seed=8)
    np.testing.assert_array_equal(a.arrival_ns, b.arrival_ns)
    np.testing.assert_array_equal(a.line, b.line)
    assert not np.array_equal(a.arrival_ns, c.arrival_ns)
    assert a.arrival_ns[0] == 0 and (np.diff(a.arrival_ns) >= 0).all()
    # per request, the move is in [0, 3 s) up to the common re-normalisation shift
    old = np.empty(len(t), dtype=np.int64)
    old[t.line - 1] = t.arrival_ns
    moved = a.arrival_ns - old[a.line - 1]
    assert moved.max() - moved.min() < 3 * S
    assert np.unique(a.arrival_ns).shape[0] > 0.99 * len(t)  # the 3 s steps are gone
    # the request columns travel with their arrival
    np.testing.assert_array_equal(np.sort(a.isl), np.sort(t.isl))
    i = int(np.flatnonzero(a.line == 100)[0])
    assert a.blocks_of(i).tolist() == t.blocks_of(99).tolist()


def test_jitter_moves_a_session_together() -> None:
    t = session_trace()
    out = jitter_arrivals(t, "uniform:30", seed=1)
    for seed in range(20):
        out = jitter_arrivals(t, "uniform:30", seed=seed)
        assert sorted(np.bincount(out.session[out.session >= 0]).tolist()) == [2, 3]
        for s in (0, 1):
            rows = np.flatnonzero(out.session == s)
            gaps = np.diff(out.arrival_ns[rows])
            original = np.diff(t.arrival_ns[out.line[rows] - 1])
            assert gaps.tolist() == original.tolist()  # same offset for every turn, turn order kept
            assert (np.diff(out.line[rows]) > 0).all()
        assert out.delay_ns[rows][0] == -1 and (out.delay_ns[rows][1:] > 0).all()


def test_zero_jitter_is_a_copy() -> None:
    t = session_trace()
    out = jitter_arrivals(t, "uniform:0", seed=1)
    assert out.arrival_ns.tolist() == t.arrival_ns.tolist()
    assert out is not t


# ---- ranges: a transformed trace must still fit int64 ns ---------------------------------------------------
def test_extreme_speedup_jitter_and_windows_are_input_errors_not_overflows() -> None:
    from llmreplay.trace import demo_trace_path

    trace = load_trace(demo_trace_path())
    with pytest.raises(InputError, match="--arrival-speedup-ratio 1e-300 stretches the trace"):
        speed_up(trace, 1e-300)
    with pytest.raises(InputError, match=r"S must be a finite number of seconds <= 3.1536e\+07"):
        jitter_arrivals(trace, "uniform:1e300", 0)
    assert len(slice_trace(trace, 1e300, None, None)) == 0  # a window past the end: empty, not an overflow
    assert len(slice_trace(trace, None, 1e300, 5)) == 5


def test_a_trace_spanning_more_than_146_years_is_rejected(tmp_path: Path) -> None:
    p = tmp_path / "span.jsonl"
    p.write_text('{"timestamp": -4000000000000, "input_length": 5, "output_length": 5}\n'
                 '{"timestamp": 4000000000000, "input_length": 5, "output_length": 5}\n')
    with pytest.raises(InputError, match=r"span\.jsonl:2: the arrival times span more than 146 years"):
        load_trace(p)
