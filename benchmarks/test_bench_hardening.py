"""Costs of the hardening (issue #13), as ratios to a baseline measured in the same run (`make bench`):

- prefix keys of a 100k-request trace with and without one line of 10^5 hash ids (was ~34×, now ~2×);
- loading a 1M-request Mooncake trace, with the chunked UTF-8 / line-length / nesting checks, against the
  bare pyarrow parse of the same bytes;
- the perf-model step guard: a replay with the guard against the same replay with the unwrapped methods.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from llmreplay.trace import load_trace
from llmreplay.trace import loaders as L
from llmreplay.trace.model import chain_prefix_keys
from llmreplay.trace.synth import poisson, write_trace

pytestmark = pytest.mark.benchmark


def best_of(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def test_prefix_keys_with_one_long_line() -> None:
    n = 100_000
    plain = np.full(n, 20, dtype=np.int64)
    long = plain.copy()
    long[5] = 100_000
    cases = {}
    for name, lengths in (("plain", plain), ("one 1e5 line", long)):
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.arange(int(offsets[-1]), dtype=np.int64)
        cases[name] = best_of(lambda o=offsets, i=ids: chain_prefix_keys(o, i))
    ratio = cases["one 1e5 line"] / cases["plain"]
    print(f"\nprefix keys, 100k requests × 20 blocks: {cases['plain']:.3f} s; with one line of 10^5 ids: "
          f"{cases['one 1e5 line']:.3f} s ({ratio:.1f}×)")
    assert ratio < 5


def test_trace_load_checks_cost(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.json as pajson

    path = tmp_path / "big.jsonl"
    write_trace(poisson(1000, num_requests=1_000_000, seed=0), path)
    full = best_of(lambda: load_trace(path), repeat=2)
    bare = best_of(lambda: pajson.read_json(pa.BufferReader(path.read_bytes())), repeat=2)
    plain_read = best_of(path.read_bytes)
    checked_read = best_of(lambda: L._read_bytes(path, str(path)))
    data = path.read_bytes()
    nesting = best_of(lambda: L._max_openers_per_line(data))
    print(f"\nload 1M requests ({path.stat().st_size / 1e6:.0f} MB): load_trace {full:.2f} s, bare pyarrow parse "
          f"{bare:.2f} s ({full / bare:.2f}×); of load_trace: checked read {checked_read:.2f} s vs plain read "
          f"{plain_read:.2f} s (+{(checked_read - plain_read) / full:.0%}), nesting pre-scan {nesting:.2f} s "
          f"(+{nesting / full:.0%})")
