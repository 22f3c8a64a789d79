"""Traces a hostile or careless user might hand over: not text, not UTF-8, nested block ids, no line breaks,
absurd nesting, a line with 10^5 block ids. Each either loads or fails as an InputError naming file and line,
after bounded work."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmreplay.errors import InputError
from llmreplay.trace import load_trace
from llmreplay.trace import loaders as L
from llmreplay.trace.model import chain_prefix_keys


def error_of(path: Path | str) -> str:
    with pytest.raises(InputError) as exc:
        load_trace(path)
    return str(exc.value)


def row(i: int, **extra: object) -> str:
    return json.dumps({"timestamp": i, "input_length": 1024, "output_length": 8, **extra}) + "\n"


# ------------------------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("name", ["t.jsonl", "t.csv"])
def test_a_non_utf8_byte_names_file_and_line(tmp_path: Path, name: str) -> None:
    p = tmp_path / name
    if name.endswith(".jsonl"):
        p.write_bytes((row(0) + row(1)).encode() + b'{"timestamp": 2, "input_length": 9, "x": "caf\xe9"}\n')
    else:
        p.write_bytes(b"timestamp,input_length,output_length\n0,10,5\n1,10,5\n2,1\xff0,5\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:"), msg
    assert f"{p}:{3 if name.endswith('.jsonl') else 4}:" in msg and "not UTF-8" in msg


def test_a_utf8_sequence_cut_at_the_end_is_not_utf8(tmp_path: Path) -> None:
    p = tmp_path / "cut.jsonl"
    p.write_bytes(row(0).encode() + b'{"x": "\xe2\x82')
    assert "not UTF-8" in error_of(p) and f"{p}:2:" in error_of(p)


def test_multibyte_text_split_across_read_chunks_is_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "_READ_CHUNK", 7)  # every multi-byte character straddles a chunk somewhere
    p = tmp_path / "utf8.jsonl"
    p.write_text("".join(row(i, session_id=f"séance-€-{i}") for i in range(5)), encoding="utf-8")
    assert len(load_trace(p)) == 5


def test_binary_garbage_that_happens_to_be_utf8_is_a_csv_error(tmp_path: Path) -> None:
    p = tmp_path / "garbage.csv"
    p.write_bytes(b"timestamp,input_length,output_length\n0,5,5\n1,5,\r\x00\"x\n\x00\x00\r\r,,\n")
    msg = error_of(p)
    assert msg.startswith(f"{p}:") and "CSV" in msg


def test_random_bytes_are_not_a_trace(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for name in ("noise.csv", "noise.jsonl", "noise.txt"):
        p = tmp_path / name
        p.write_bytes(rng.integers(0, 256, size=5000, dtype=np.uint8).tobytes())
        assert error_of(p).startswith(f"{p}:")


# ------------------------------------------------------------------------------------------- hash_ids shapes
@pytest.mark.parametrize("ids", [[[1, 2], [3]], [[1], [2]], [1, [2]], [[[1]]]])
def test_nested_hash_ids_are_rejected(tmp_path: Path, ids: list[object]) -> None:
    p = tmp_path / "nested.jsonl"
    p.write_text(row(0, hash_ids=[7]) + row(1, hash_ids=ids))
    msg = error_of(p)
    assert f"{p}:2:" in msg and "flat list of integers" in msg and "nested list" in msg


@pytest.mark.parametrize("arrow_min_bytes", [0, L.ARROW_MIN_BYTES])  # 0: the file goes to pyarrow first
def test_json_nested_100k_deep_is_an_error_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       arrow_min_bytes: int) -> None:
    monkeypatch.setattr(L, "ARROW_MIN_BYTES", arrow_min_bytes)
    p = tmp_path / "deep.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    p.write_text(row(0) + '{"timestamp": 1, "input_length": 5, "output_length": 5, "x": ' + deep + "}\n")
    msg = error_of(p)  # pyarrow's JSON reader would segfault on this line: it must never see it
    assert f"{p}:2:" in msg and "nested too deeply" in msg


def test_max_openers_per_line_bounds_the_nesting() -> None:
    assert L._max_openers_per_line(b'{"hash_ids": [1, 2]}\n{"a": 1}\n') == 2
    assert L._max_openers_per_line(b"[[[[\n[\n") == 4
    assert L._max_openers_per_line(b"") == 0


# ------------------------------------------------------------------------------------------- bounded reads
class Zeros(io.RawIOBase):
    """An endless stream of NUL bytes that counts what it hands out (``/dev/zero`` with a meter)."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(b)
        b[:n] = bytes(n)
        self.served += n
        return n


def test_a_stream_without_line_breaks_stops_after_the_line_limit() -> None:
    src = Zeros()
    with pytest.raises(InputError, match=r"^zeros:1: a line is longer than 16 MiB"):
        L._read_text_bytes(io.BufferedReader(src), "zeros")
    # the work counter: bytes read before giving up, at most the limit plus two read chunks
    assert src.served <= L.MAX_LINE_BYTES + 2 * L._READ_CHUNK + io.DEFAULT_BUFFER_SIZE


def test_dev_zero_as_a_trace_exits_2_from_the_cli() -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    out = subprocess.run([sys.executable, "-m", "llmreplay", "trace-stats", "/dev/zero"], capture_output=True,
                         text=True, timeout=300)  # a generous guard only; the bound is the test above
    assert out.returncode == 2, out.stderr
    assert "/dev/zero:1:" in out.stderr and "Traceback" not in out.stderr


def test_a_line_of_100k_block_ids_loads(tmp_path: Path) -> None:
    ids = list(range(10**12, 10**12 + 100_000))  # 13-digit ids: a 1.5 MB line
    p = tmp_path / "long.jsonl"
    p.write_text(row(0, hash_ids=[1, 2]) + json.dumps(
        {"timestamp": 5, "input_length": 512 * 100_000, "output_length": 1, "hash_ids": ids}) + "\n")
    t = load_trace(p)
    assert t.blocks_of(1).tolist() == ids


def test_a_line_longer_than_the_limit_names_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(L, "_READ_CHUNK", 64)
    p = tmp_path / "long.jsonl"
    p.write_text(row(0) + row(1) + '{"timestamp": 2, "pad": "' + "x" * 2000 + '"}\n')
    msg = error_of(p)
    assert msg.startswith(f"{p}:3: a line is longer than")


def test_a_truncated_gzip_trace_is_an_input_error(tmp_path: Path) -> None:
    import gzip

    p = tmp_path / "t.jsonl.gz"
    p.write_bytes(gzip.compress(("".join(row(i) for i in range(100))).encode())[:60])
    assert "cannot read the trace" in error_of(p)


# ------------------------------------------------------------------------------------------- prefix keys
def reference_keys(offsets: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The chained hash, one request and one block at a time: the definition the fast version must match."""
    mask = (1 << 64) - 1
    out = []
    for r in range(offsets.shape[0] - 1):
        h = 0x9E3779B97F4A7C15
        for v in ids[offsets[r]:offsets[r + 1]].tolist():
            h = ((h * 0xBF58476D1CE4E5B9) & mask) ^ ((v + 0x94D049BB133111EB) & mask)
            h ^= h >> 31
            h = (h * 0x9E3779B97F4A7C15) & mask
            h ^= h >> 29
            out.append(h)
    return np.asarray(out, dtype=np.uint64).view(np.int64)


@pytest.mark.parametrize("seed", range(6))
def test_prefix_keys_match_the_one_at_a_time_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 80))
    lengths = rng.integers(0, 30, size=n)
    lengths[int(rng.integers(0, n))] = int(rng.integers(200, 800))  # one long request: the tail path
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = rng.integers(-2**62, 2**62, size=int(offsets[-1]), dtype=np.int64)
    np.testing.assert_array_equal(chain_prefix_keys(offsets, ids), reference_keys(offsets, ids))


def test_prefix_keys_numpy_passes_follow_the_crowd_not_the_longest_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The work counter: numpy passes over the requests. One request of 10^5 blocks among 10^4 requests of
    20 must cost about 20 passes, not 10^5 (the old cost: longest list × requests)."""
    passes = {"n": 0}
    real = np.searchsorted

    def counting(*args: object, **kwargs: object) -> object:
        passes["n"] += 1
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(np, "searchsorted", counting)
    lengths = np.full(10_000, 20, dtype=np.int64)
    lengths[17] = 100_000
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.arange(int(offsets[-1]), dtype=np.int64)
    keys = chain_prefix_keys(offsets, ids)
    assert passes["n"] <= 25
    tail = slice(int(offsets[17]), int(offsets[18]))
    np.testing.assert_array_equal(keys[tail][:50], reference_keys(np.array([0, 50]), ids[tail][:50]))
