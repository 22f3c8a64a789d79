"""Loading traces: the shared real traces, exact time parsing, sessions, aliases, and precise errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from llmreplay.errors import InputError
from llmreplay.trace import demo_trace_path, detect_format, load_trace
from llmreplay.trace import loaders as L
from llmreplay.trace.model import Trace

COLUMNS = ("arrival_ns", "isl", "osl", "hash_offsets", "hash_ids", "session", "delay_ns", "line")

SHARED = {
    "mooncake_fast25_conversation_trace.jsonl": (12_031, "mooncake"),
    "mooncake_fast25_synthetic_trace.jsonl": (3_993, "mooncake"),
    "azure_llm_2023_code.csv": (8_819, "azure"),
    "azure_llm_2023_conv.csv": (19_366, "azure"),
}


@pytest.fixture(autouse=True, params=["python-json", "arrow-json"])
def json_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both JSON paths: small files are parsed in Python, large ones by pyarrow."""
    if request.param == "arrow-json":
        monkeypatch.setattr(L, "ARROW_MIN_BYTES", 0)
    return str(request.param)


def same(a: Trace, b: Trace) -> None:
    for c in COLUMNS:
        np.testing.assert_array_equal(getattr(a, c), getattr(b, c), err_msg=c)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def jl(*rows: dict[str, object]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def error_of(path: Path, fmt: str = "auto", block_size: int = 512) -> str:
    with pytest.raises(InputError) as exc:
        load_trace(path, fmt, block_size)
    return str(exc.value)


# ------------------------------------------------------------------------------------------- real traces
@pytest.mark.parametrize("name", sorted(SHARED))
def test_shared_traces_load_with_readme_counts(shared_traces: Path, name: str) -> None:
    count, fmt = SHARED[name]
    t = load_trace(shared_traces / name)
    assert len(t) == count
    assert t.format == fmt
    assert t.arrival_ns[0] == 0
    assert (np.diff(t.arrival_ns) >= 0).all()
    assert (t.osl >= 1).all() and (t.isl >= 1).all()
    assert t.notes == []  # all four are in time order, with no unknown fields
    first = 2 if fmt == "azure" else 1  # the CSV header is line 1
    np.testing.assert_array_equal(t.line, np.arange(first, count + first))
    if fmt == "mooncake":
        # every record has ceil(isl / 512) hash ids (README)
        np.testing.assert_array_equal(np.diff(t.hash_offsets), -(-t.isl // 512))
    else:
        assert not t.has_hashes


def test_conversation_trace_loads_every_hash_id(shared_traces: Path) -> None:
    # load time is measured in benchmarks/ (a wall-clock bound here failed on a loaded machine)
    t = load_trace(shared_traces / "mooncake_fast25_conversation_trace.jsonl")
    assert int(t.hash_ids.shape[0]) == 288_500


def test_mooncake_values_are_exact(shared_traces: Path) -> None:
    path = shared_traces / "mooncake_fast25_conversation_trace.jsonl"
    t = load_trace(path)
    with path.open() as fh:
        rows = [json.loads(next(fh)) for _ in range(50)]
    assert t.arrival_ns[:50].tolist() == [r["timestamp"] * 1_000_000 for r in rows]
    assert t.isl[:50].tolist() == [r["input_length"] for r in rows]
    assert t.osl[:50].tolist() == [r["output_length"] for r in rows]
    assert [t.blocks_of(i).tolist() for i in range(50)] == [r["hash_ids"] for r in rows]
    assert (t.session == -1).all() and (t.delay_ns == -1).all()


def test_azure_timestamps_are_exact_ns(shared_traces: Path) -> None:
    t = load_trace(shared_traces / "azure_llm_2023_code.csv")
    # 18:17:03.9799600 -> 18:17:04.0319600 and the last one, 19:14:19.9280160
    assert int(t.arrival_ns[1]) == 52_000_000
    whole_s = (19 - 18) * 3600 + (14 - 17) * 60 + (19 - 3)
    assert int(t.arrival_ns[-1]) == whole_s * 10**9 + 928_016_000 - 979_960_000
    assert t.isl[:2].tolist() == [4808, 3180] and t.osl[:2].tolist() == [10, 8]


def test_azure_seven_digit_fraction_keeps_100ns(tmp_path: Path) -> None:
    p = write(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                 "2023-12-31 23:59:59.9999999,10,1\n"
                                 "2024-01-01 00:00:00.0000001,10,1\n"
                                 "2024-01-01 00:00:00.0000002,10,1\n"
                                 "2024-03-01 00:00:00.1234567,10,1\n")
    t = load_trace(p)
    assert t.format == "azure"
    leap_ns = (31 + 29) * 86_400 * 10**9  # Jan + Feb of a leap year
    assert t.arrival_ns.tolist() == [0, 200, 300, leap_ns + 123_456_800]


def test_azure_python_time_parser_matches_arrow() -> None:
    import pyarrow as pa

    stamps = ["2023-11-16 18:17:03.9799600", "2024-02-29 00:00:00", "1999-12-31 23:59:59.123456789"]
    arrow = L._csv_stamps(pa.array(stamps), "TIMESTAMP", np.arange(3), "x")
    epoch = L.date(1970, 1, 1).toordinal() * 86400 * 10**9
    assert arrow.tolist() == [L._stamp_py(s) - epoch for s in stamps]  # type: ignore[operator]


# ------------------------------------------------------------------------------------------- format choice
def test_auto_detection(tmp_path: Path, shared_traces: Path) -> None:
    assert detect_format(shared_traces / "azure_llm_2023_conv.csv") == "azure"
    assert detect_format(shared_traces / "mooncake_fast25_synthetic_trace.jsonl") == "mooncake"
    generic = write(tmp_path, "g.txt", jl({"arrival_s": 0.5, "isl": 10, "osl": 2}))
    assert detect_format(generic) == "jsonl"
    assert load_trace(generic).format == "jsonl"
    csvp = write(tmp_path, "g.csv", "arrival_s,isl,osl\n0.0,5,1\n")
    assert detect_format(csvp) == "csv"


def test_unknown_format_lists_choices(tmp_path: Path) -> None:
    p = write(tmp_path, "t.jsonl", jl({"timestamp": 0, "input_length": 1, "output_length": 1}))
    msg = error_of(p, fmt="parquet")
    assert "unknown trace format 'parquet'" in msg
    for choice in ("auto", "mooncake", "azure", "csv", "jsonl"):
        assert choice in msg


def test_explicit_format_overrides_extension(tmp_path: Path) -> None:
    p = write(tmp_path, "trace.data", jl({"timestamp": 5, "input_length": 100, "output_length": 3}))
    assert load_trace(p, "mooncake").format == "mooncake"
    assert load_trace(p, "jsonl").format == "jsonl"
    msg = error_of(p, "azure")
    assert "TIMESTAMP" in msg


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "no such trace file" in error_of(tmp_path / "nope.jsonl")
    assert "folder" in error_of(tmp_path)


def test_gzip_is_read(tmp_path: Path, shared_traces: Path) -> None:
    src = shared_traces / "mooncake_fast25_synthetic_trace.jsonl"
    gz = tmp_path / "s.jsonl.gz"
    with gzip.open(gz, "wb") as fh:
        fh.write(src.read_bytes())
    same(load_trace(gz), load_trace(src))


def test_demo_trace_is_the_first_five_minutes(shared_traces: Path) -> None:
    p = demo_trace_path()
    assert p.exists()
    data = p.read_bytes()
    assert (shared_traces / "mooncake_fast25_conversation_trace.jsonl").read_bytes().startswith(data)
    t = load_trace(p)
    assert len(t) == 918
    assert int(t.arrival_ns[-1]) == 297 * 10**9


# ---------------------------------------------------------------------------------------- fast vs slow path
def _slow(path: Path, monkeypatch: pytest.MonkeyPatch) -> Trace:
    with monkeypatch.context() as m:
        m.setattr(L, "_arrow_json", lambda buf, lines: None)
        return load_trace(path)


@pytest.fixture
def arrow_for_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small JSON files are parsed in Python (importing pyarrow costs more); these tests need pyarrow's path."""
    monkeypatch.setattr(L, "ARROW_MIN_BYTES", 0)


def test_trace_loading_imports_no_pandas_and_small_json_no_pyarrow(shared_traces: Path) -> None:
    """Start-up cost: pyarrow is imported only for CSV and large JSON files, and pandas never (pyarrow's
    ``to_numpy``/``pa.scalar`` would import it: ~0.2 s of CPU, about the whole Python floor of a replay)."""
    import subprocess
    import sys

    code = ("import sys; from llmreplay.trace import load_trace; "
            f"t = load_trace({str(shared_traces / 'mooncake_fast25_conversation_trace.jsonl')!r}); "
            "print(len(t), 'pyarrow' in sys.modules, 'pandas' in sys.modules); "
            f"t = load_trace({str(shared_traces / 'azure_llm_2023_conv.csv')!r}); "
            "print(len(t), 'pyarrow' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["12031", "False", "False", "19366", "True", "False"]


@pytest.mark.usefixtures("arrow_for_all")
def test_fast_and_slow_json_paths_agree(shared_traces: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    src = shared_traces / "mooncake_fast25_synthetic_trace.jsonl"
    same(load_trace(src), _slow(src, monkeypatch))
    p = write(tmp_path, "s.jsonl", "\n" + jl(
        {"timestamp": 1000, "input_length": 600, "output_length": 5, "hash_ids": [1, 2], "session_id": "a"},
        {"timestamp": 1500.25, "input_length": 10, "output_length": 5, "session_id": 7},
        {"timestamp": 2000, "input_length": 900, "output_length": 5, "hash_ids": [1, 2], "session_id": "a",
         "delay": 250.5},
        {"timestamp": 2500, "input_length": 10, "output_length": 5, "hash_ids": [], "extra": "x"},
        {"timestamp": 3000, "input_length": 10, "output_length": 5, "session_id": 7.0},
    ) + "\n  \n")
    fast, slow = load_trace(p), _slow(p, monkeypatch)
    same(fast, slow)
    assert fast.notes == slow.notes
    assert fast.line.tolist() == [2, 3, 4, 5, 6]
    assert fast.session.tolist() == [0, 1, 0, -1, 1]  # 7 and 7.0 are one session, like JSON numbers
    assert fast.delay_ns.tolist() == [-1, -1, 250_500_000, -1, 1_499_750_000]


@pytest.mark.usefixtures("arrow_for_all")
def test_pieces_merge_like_one_read(shared_traces: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"timestamp": i * 10, "input_length": 1100 + i, "output_length": 1 + i % 7,
             "hash_ids": list(range(i % 3)), "session_id": f"s{i % 13}" if i % 2 else None}
            for i in range(400)]
    p = write(tmp_path, "many.jsonl", jl(*rows))
    whole = load_trace(p)
    with monkeypatch.context() as m:
        m.setattr(L, "_PIECE_BYTES", 1500)
        pieces = load_trace(p)
        same(pieces, whole)
        src = shared_traces / "mooncake_fast25_synthetic_trace.jsonl"
        same(load_trace(src), _slow(src, monkeypatch))
    same(whole, _slow(p, monkeypatch))


# --------------------------------------------------------------------------------------- sessions & aliases
def test_sessions_delays_and_aliases(tmp_path: Path) -> None:
    p = write(tmp_path, "sess.jsonl", jl(
        {"created_time": 0, "input_tokens": 100, "output_tokens": 10, "session_id": "b"},
        {"timestamp": 1000, "input_length": 50, "output_length": 5},
        {"timestamp": 2000, "input_length": 200, "output_length": 10, "session_id": "a"},
        {"timestamp": 3000, "input_length": 300, "output_length": 10, "session_id": "b"},
        {"timestamp": 9000, "input_length": 400, "output_length": 10, "session_id": "b", "delay_ms": 42},
        {"input_length": 500, "output_length": 10, "session_id": "a", "delay": 7},
    ))
    t = load_trace(p)
    # b is first seen -> session 0, a -> 1; the turn without timestamp is recorded at 2000 + 7 ms
    assert t.session.tolist() == [0, -1, 1, 1, 0, 0]
    assert t.arrival_ns.tolist() == [0, 1_000_000_000, 2_000_000_000, 2_007_000_000, 3_000_000_000,
                                     9_000_000_000]
    assert t.delay_ns.tolist() == [-1, -1, -1, 7_000_000, 3_000_000_000, 42_000_000]
    assert t.line.tolist() == [1, 2, 3, 6, 4, 5]
    assert t.has_sessions


def test_generic_csv_with_hashes_and_sessions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = ("arrival_s,isl,osl,hash_ids,session_id,delay_ms,comment\n"
            "10.5,600,3,1 2,,,x\n"
            "\n"
            "10.25,100,2,,s1,,y\n"
            "11.0,1100,4, 1  2 3 ,s1,300,\n")
    p = write(tmp_path, "g.csv", text)
    t = load_trace(p)
    assert t.format == "csv"
    assert t.arrival_ns.tolist() == [0, 250_000_000, 750_000_000]  # sorted: 10.25, 10.5, 11.0
    assert t.line.tolist() == [4, 2, 5]
    assert [t.blocks_of(i).tolist() for i in range(3)] == [[], [1, 2], [1, 2, 3]]
    assert t.session.tolist() == [0, -1, 0]
    assert t.delay_ns.tolist() == [-1, -1, 300_000_000]
    assert any("sorted stably" in n for n in t.notes)
    assert any("comment" in n for n in t.notes)
    # the python CSV reader gives the same columns
    with monkeypatch.context() as m:
        m.setattr(L, "_arrow_csv", lambda data, header: None)
        same(load_trace(p), t)


def test_generic_jsonl_timestamp_ms(tmp_path: Path) -> None:
    p = write(tmp_path, "g.jsonl", jl({"timestamp_ms": 100, "isl": 5, "osl": 1},
                                      {"timestamp_ms": 100.5, "isl": 6, "osl": 2}))
    t = load_trace(p)
    assert t.arrival_ns.tolist() == [0, 500_000]
    assert t.format == "jsonl"


def test_fewer_hash_blocks_than_the_prompt_is_fine(tmp_path: Path) -> None:
    p = write(tmp_path, "t.jsonl",
              jl({"timestamp": 0, "input_length": 5000, "output_length": 1, "hash_ids": [1]}))
    t = load_trace(p)
    assert t.isl.tolist() == [5000]  # never clamped to the hashed blocks
    assert t.blocks_of(0).tolist() == [1]


def test_block_size_changes_the_hash_cap(tmp_path: Path) -> None:
    p = write(tmp_path, "t.jsonl",
              jl({"timestamp": 0, "input_length": 512, "output_length": 1, "hash_ids": [1, 2]}))
    assert len(load_trace(p, block_size=256)) == 1
    assert "at most 1 block of 512 tokens" in error_of(p)
    assert "block size" in error_of(p, block_size=0)


def test_backwards_timestamps_are_sorted_stably_with_a_note(tmp_path: Path) -> None:
    p = write(tmp_path, "t.jsonl", jl(
        {"timestamp": 3000, "input_length": 1, "output_length": 1},
        {"timestamp": 1000, "input_length": 2, "output_length": 1},
        {"timestamp": 1000, "input_length": 3, "output_length": 1},
        {"timestamp": 2000, "input_length": 4, "output_length": 1},
    ))
    t = load_trace(p)
    assert t.isl.tolist() == [2, 3, 4, 1]
    assert t.arrival_ns.tolist() == [0, 0, 1_000_000_000, 2_000_000_000]
    assert t.line.tolist() == [2, 3, 4, 1]
    assert len(t.notes) == 1 and "line 2" in t.notes[0] and "sorted stably" in t.notes[0]


# ------------------------------------------------------------------------------------------- errors
OK = {"timestamp": 0, "input_length": 10, "output_length": 2}
WHOLE = "'input_length' must be a whole number"


@pytest.mark.parametrize(
    ("line3", "needle"),
    [
        ('{"timestamp": 5, "input_length": 10', "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"timestamp": 5, "output_length": 2}', "missing field 'input_length'"),
        ('{"timestamp": 5, "input_length": 10}', "missing field 'output_length'"),
        ('{"input_length": 10, "output_length": 2}', "missing arrival time"),
        ('{"timestamp": "5", "input_length": 10, "output_length": 2}', "'timestamp' must be a number"),
        ('{"timestamp": 5, "input_length": "10", "output_length": 2}', WHOLE),
        ('{"timestamp": 5, "input_length": 10.5, "output_length": 2}', WHOLE),
        ('{"timestamp": 5, "input_length": true, "output_length": 2}', WHOLE),
        ('{"timestamp": 5, "input_length": -3, "output_length": 2}', "at least one token"),
        ('{"timestamp": 5, "input_length": 10, "output_length": 0}', "must generate at least one token"),
        ('{"timestamp": 5, "input_length": 10, "output_length": 2, "hash_ids": 3}',
         "must be a list of integers"),
        ('{"timestamp": 5, "input_length": 600, "output_length": 2, "hash_ids": [1, "x"]}', "found 'x'"),
        ('{"timestamp": 5, "input_length": 600, "output_length": 2, "hash_ids": [1, 2, 3]}',
         "lists 3 blocks, but a prompt of 600 tokens fills at most 2 blocks of 512"),
        ('{"timestamp": 5, "input_length": 10, "output_length": 2, "session_id": [1]}', "JSON scalar"),
        ('{"timestamp": 5, "input_length": 10, "output_length": 2, "session_id": 1, "delay": -1}',
         "think time must be >= 0"),
    ],
)
def test_json_errors_name_file_line_and_field(tmp_path: Path, line3: str, needle: str) -> None:
    p = write(tmp_path, "bad.jsonl", json.dumps(OK) + "\n\n" + line3 + "\n" + json.dumps(OK) + "\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:3: "), msg
    assert needle in msg, msg


def test_session_turns_must_keep_time_order(tmp_path: Path) -> None:
    p = write(tmp_path, "t.jsonl", jl(
        {"timestamp": 5000, "input_length": 1, "output_length": 1, "session_id": 1},
        {"timestamp": 6000, "input_length": 1, "output_length": 1},
        {"timestamp": 4000, "input_length": 1, "output_length": 1, "session_id": 1, "delay": 10},
    ))
    msg = error_of(p)
    assert msg.startswith(f"{p}:3: ") and "earlier than the previous turn's (line 1)" in msg


def test_later_turn_needs_timestamp_or_delay(tmp_path: Path) -> None:
    p = write(tmp_path, "t.jsonl", jl(
        {"timestamp": 0, "input_length": 1, "output_length": 1, "session_id": "x"},
        {"input_length": 1, "output_length": 1, "session_id": "x"},
    ))
    msg = error_of(p)
    assert msg.startswith(f"{p}:2: ") and "neither a timestamp nor a delay" in msg


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_trace(tmp_path: Path, text: str) -> None:
    assert "the trace has no requests" in error_of(write(tmp_path, "e.jsonl", text))


def test_csv_header_only_has_no_requests(tmp_path: Path) -> None:
    assert "the trace has no requests" in error_of(write(tmp_path, "e.csv", "arrival_s,isl,osl\n"))


@pytest.mark.parametrize(
    ("body", "line", "needle"),
    [
        ("0.0,5,1\n1.0,5\n", 3, "expected 3 comma-separated fields"),
        ("0.0,5,1\n1.0,five,1\n", 3, "column 'isl' must be a whole number of tokens, got 'five'"),
        ("0.0,5,1\n1.0,5.5,1\n", 3, "got '5.5'"),
        ("0.0,5,1\n1.0,,1\n", 3, "column 'isl' is empty"),
        ("0.0,5,1\nsoon,5,1\n", 3, "column 'arrival_s' must be a number (seconds)"),
        ("0.0,5,1\n\n1.0,5,0\n", 4, "must generate at least one token"),
    ],
)
def test_generic_csv_errors(tmp_path: Path, body: str, line: int, needle: str) -> None:
    p = write(tmp_path, "bad.csv", "arrival_s,isl,osl\n" + body)
    msg = error_of(p)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert needle in msg, msg


def test_csv_bad_hash_ids(tmp_path: Path) -> None:
    p = write(tmp_path, "bad.csv", "arrival_s,isl,osl,hash_ids\n0,600,1,1 2\n1,600,1,1 b\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:3: ") and "found 'b'" in msg


def test_csv_missing_length_column(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "bad.csv", "arrival_s,isl\n0,5\n"))
    assert "no column 'osl'" in msg and "output_length" in msg


def test_azure_errors(tmp_path: Path) -> None:
    head = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
    p = write(tmp_path, "a.csv", head + "2023-11-16 18:17:03.9799600,10,1\n2023-11-16 18:17:04+01:00,10,1\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:3: ") and "YYYY-MM-DD HH:MM:SS.fffffff" in msg
    p = write(tmp_path, "b.csv", head + "2023-11-16 18:17:03.9799600,10,1\n2023-02-30 18:17:04.0,10,1\n")
    assert error_of(p).startswith(f"{p}:3: ")
    p = write(tmp_path, "c.csv", head + "2023-11-16 18:17:03.9799600,10,0\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:2: ") and "'GeneratedTokens' is 0" in msg
    p = write(tmp_path, "d.csv", "TIMESTAMP,ContextTokens\n2023-11-16 18:17:03,10\n")
    assert "GeneratedTokens" in error_of(p, "azure")


def test_azure_backwards_times_are_sorted(tmp_path: Path) -> None:
    p = write(tmp_path, "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                 "2023-11-16 18:17:05.0000000,1,1\n"
                                 "2023-11-16 18:17:04.5000000,2,1\n")
    t = load_trace(p)
    assert t.isl.tolist() == [2, 1] and t.arrival_ns.tolist() == [0, 500_000_000]
    assert "line 3" in t.notes[0]
