"""Synthetic generators: distributions, rates, burstiness, agentic sessions, determinism, round trip."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmreplay.errors import InputError
from llmreplay.trace import load_trace
from llmreplay.trace.model import Trace
from llmreplay.trace.stats import trace_stats
from llmreplay.trace.synth import agentic, bursty, generate, parse_dist, poisson, write_trace

COLUMNS = ("arrival_ns", "isl", "osl", "hash_offsets", "hash_ids", "session", "delay_ns", "line")
S = 1_000_000_000


def same(a: Trace, b: Trace) -> None:
    for c in COLUMNS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)


# ------------------------------------------------------------------------------------------- distributions
def test_parse_dist_kinds() -> None:
    rng = np.random.default_rng(0)
    assert parse_dist("fixed:512").sample(rng, 5).tolist() == [512] * 5
    assert parse_dist("512").sample(rng, 2).tolist() == [512, 512]
    u = parse_dist("uniform:100,2000").sample(rng, 20_000)
    assert u.min() == 100 and u.max() == 2000 and abs(u.mean() - 1050) < 15
    n = parse_dist("normal:3000,500").sample(rng, 20_000)
    assert abs(n.mean() - 3000) < 20 and abs(n.std() - 500) < 15
    ln = parse_dist("lognormal:7.5,0.8").sample(rng, 50_000)
    assert abs(np.median(ln) - np.exp(7.5)) / np.exp(7.5) < 0.03
    assert abs(parse_dist("lognormal:7.5,0.8").mean - np.exp(7.5 + 0.32)) < 1e-6
    for spec in ("normal:5,100", "lognormal:0,3"):
        assert parse_dist(spec).sample(rng, 10_000).min() >= 1  # clipped to >= 1
        assert parse_dist(spec).sample(rng, 10).dtype == np.int64
    assert str(parse_dist("uniform:1,2")) == "uniform:1,2"


@pytest.mark.parametrize("spec", ["", "gamma:1,2", "fixed:0", "fixed:1.5", "uniform:5,1", "uniform:1",
                                  "normal:1", "normal:1,-2", "lognormal:a,b", "normal:nan,1"])
def test_parse_dist_errors(spec: str) -> None:
    with pytest.raises(InputError, match="distribution"):
        parse_dist(spec)


# ------------------------------------------------------------------------------------------- arrivals
def test_poisson_rate_count_and_cv() -> None:
    t = poisson(20.0, duration_s=500, seed=3)
    s = trace_stats(t)
    assert abs(len(t) - 10_000) < 400
    assert t.arrival_ns[-1] < 500 * S
    assert abs(s["interarrival_cv"] - 1.0) < 0.05
    assert len(poisson(5.0, num_requests=123, seed=1)) == 123
    # every request has its own ceil(isl / 512) blocks, shared with nobody
    np.testing.assert_array_equal(np.diff(t.hash_offsets), -(-t.isl // 512))
    assert np.unique(t.hash_ids).shape[0] == t.hash_ids.shape[0]


def test_poisson_uses_the_given_lengths() -> None:
    t = poisson(2.0, num_requests=500, isl_dist="fixed:1000", osl_dist="uniform:10,20", seed=0)
    assert (t.isl == 1000).all() and t.osl.min() >= 10 and t.osl.max() <= 20


def test_bursty_gamma_cv() -> None:
    t = bursty(10.0, num_requests=40_000, cv=3.0, seed=2)
    s = trace_stats(t)
    assert abs(s["interarrival_cv"] - 3.0) < 0.25
    assert abs(s["mean_rate_rps"] - 10.0) < 0.8


def test_bursty_on_off_is_silent_when_off() -> None:
    t = bursty(4.0, duration_s=400, on_s=10, off_s=30, seed=5)
    secs = t.arrival_ns / S
    assert ((secs % 40) < 10).all()
    assert abs(len(t) / 400 - 4.0) < 0.6  # the mean rate is kept
    assert trace_stats(t)["interarrival_cv"] > 1.5


def test_bursty_argument_errors() -> None:
    with pytest.raises(InputError, match="not both"):
        bursty(1.0, num_requests=10, cv=2.0, on_s=1, off_s=1)
    with pytest.raises(InputError, match="on_s > 0"):
        bursty(1.0, num_requests=10, on_s=1)
    with pytest.raises(InputError, match="--cv"):
        bursty(1.0, num_requests=10, cv=0)


@pytest.mark.parametrize("kwargs", [dict(rate=0.0, num_requests=5), dict(rate=1.0),
                                    dict(rate=1.0, duration_s=10, num_requests=5),
                                    dict(rate=1.0, num_requests=0), dict(rate=1.0, duration_s=-1.0)])
def test_size_errors(kwargs: dict[str, float]) -> None:
    with pytest.raises(InputError):
        poisson(**kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------- agentic
def test_agentic_lengths_match_the_tool_agent_shape() -> None:
    t = agentic(5.0, num_requests=4000, seed=0)
    assert len(t) == 4000
    assert 8000 <= t.isl.mean() <= 9000
    assert 170 <= t.osl.mean() <= 180
    s = trace_stats(t)
    assert s["sessions"] > 300
    assert s["prefix"]["reused_share"] > 0.6
    assert abs(s["mean_rate_rps"] - 5.0) < 1.0


def test_agentic_turns_grow_and_extend_the_previous_prompt() -> None:
    t = agentic(2.0, num_requests=600, seed=4)
    checked = 0
    for s in range(int(t.session.max()) + 1):
        rows = np.flatnonzero(t.session == s)
        assert t.delay_ns[rows[0]] == -1
        assert (t.delay_ns[rows[1:]] >= 0).all()
        assert (np.diff(t.arrival_ns[rows]) >= 0).all()
        for a, b in itertools.pairwise(rows):
            assert t.isl[b] > t.isl[a] + t.osl[a]
            full = int(t.isl[a]) // 512
            prev, cur = t.blocks_of(int(a)), t.blocks_of(int(b))
            assert cur[:full].tolist() == prev[:full].tolist()  # the previous prompt's full blocks
            assert len(cur) == -(-int(t.isl[b]) // 512)
            checked += 1
    assert checked > 300
    # sessions of one agent share the system prompt's leading blocks
    firsts = [t.blocks_of(int(np.flatnonzero(t.session == s)[0]))[0] for s in range(int(t.session.max()) + 1)]
    assert len(set(int(x) for x in firsts)) <= 8


def test_agentic_duration_bounds_recorded_arrivals() -> None:
    t = agentic(3.0, duration_s=300, seed=1)
    assert t.arrival_ns.max() < 300 * S
    assert abs(len(t) / 300 - 3.0) < 1.0


# ------------------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("kind", ["poisson", "bursty", "agentic"])
def test_same_seed_same_trace(kind: str) -> None:
    a = generate(kind, rate=4.0, num_requests=300, seed=11)
    b = generate(kind, rate=4.0, num_requests=300, seed=11)
    c = generate(kind, rate=4.0, num_requests=300, seed=12)
    same(a, b)
    assert not np.array_equal(a.arrival_ns, c.arrival_ns)


def test_generate_unknown_kind() -> None:
    with pytest.raises(InputError, match="poisson, bursty, agentic"):
        generate("zipf", rate=1.0, num_requests=3)


# ------------------------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("kind", ["poisson", "bursty", "agentic"])
@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_write_then_load_round_trip(tmp_path: Path, kind: str, name: str) -> None:
    t = generate(kind, rate=7.3, duration_s=120, seed=5)
    p = tmp_path / name
    write_trace(t, p)
    back = load_trace(p)
    same(t, back)
    assert back.format == "mooncake"
    assert back.notes == []


def test_round_trip_keeps_sub_ms_times_and_traces_without_hashes(tmp_path: Path, shared_traces: Path) -> None:
    az = load_trace(shared_traces / "azure_llm_2023_code.csv")
    p = tmp_path / "az.jsonl"
    write_trace(az, p)
    back = load_trace(p)
    for c in ("arrival_ns", "isl", "osl", "hash_offsets", "hash_ids", "session", "delay_ns"):
        np.testing.assert_array_equal(getattr(back, c), getattr(az, c), err_msg=c)
    assert '"timestamp": 52.0001' not in p.read_text()[:200]
    assert p.read_text().splitlines()[1].startswith('{"timestamp": 52, ')


def test_write_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_trace(poisson(1.0, num_requests=2), tmp_path / "no" / "t.jsonl")


# ---- ranges: a trace must fit int64 ns and memory --------------------------------------------------------
@pytest.mark.parametrize(("args", "needle"), [
    (["poisson", "--rate", "1e-300", "--num-requests", "5"], "146 years"),
    (["bursty", "--rate", "1e-300", "--num-requests", "5"], "146 years"),
    (["poisson", "--rate", "1e300", "--duration", "10"], "at most 100,000,000"),
    (["poisson", "--rate", "1", "--duration", "inf"], "--duration must be > 0"),
    (["poisson", "--rate", "nan", "--num-requests", "3"], "--rate must be"),
    (["poisson", "--rate", "1", "--num-requests", "1000000000000"], "--num-requests must be a whole number"),
    (["bursty", "--rate", "1", "--cv", "1e300", "--num-requests", "10"], "--cv must be from 0.01 to 100"),
])
def test_synth_out_of_range_exits_2_and_writes_nothing(tmp_path: Path, args: list[str], needle: str) -> None:
    out_file = tmp_path / "t.jsonl"
    out = subprocess.run([sys.executable, "-m", "llmreplay", "synth", *args, "-o", str(out_file)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert needle in " ".join(out.stderr.split()) and "Traceback" not in out.stderr
    assert not out_file.exists()


def test_a_failed_write_leaves_the_old_trace_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmreplay.trace.synth as S

    for name in ("t.jsonl", "t.jsonl.gz"):
        path = tmp_path / name
        write_trace(poisson(5, num_requests=50, seed=1), path)
        before = path.read_bytes()

        def broken(*args: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(S, "_write_lines", broken)
        with pytest.raises(InputError, match=f"cannot write {path}: No space left on device"):
            write_trace(poisson(5, num_requests=500, seed=2), path)
        monkeypatch.undo()
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
        assert len(load_trace(path)) == 50
