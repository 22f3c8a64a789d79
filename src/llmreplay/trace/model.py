"""The in-memory trace: one numpy column per field, so a million requests load fast and stay small."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from llmreplay.units import NS_PER_S as NS_PER_S  # re-exported: trace code reads it from here

I64 = npt.NDArray[np.int64]

#: the longest time span a trace may cover: arrival times are int64 ns, and 2^62 ns (146 years) leaves room for
#: the replay's sums (an arrival plus a think time plus a step never wraps around)
MAX_SPAN_NS = 2**62
MAX_SPAN_S = MAX_SPAN_NS / NS_PER_S

#: Tokens per prefix hash block when a trace does not say: Mooncake's 512
DEFAULT_BLOCK_SIZE = 512


@dataclass
class Trace:
    """Requests in arrival order (stable-sorted by ``arrival_ns``).

    Columns (all int64, length ``n``):
      - ``arrival_ns``: arrival time in integer nanoseconds, relative to the trace's first arrival (= 0).
        For turn k > 0 of a session this is the *recorded* time; the replay releases such a turn when the
        previous turn finishes plus ``delay_ns``.
      - ``isl``, ``osl``: prompt and output lengths in tokens (``osl >= 1``).
      - ``session``: session index (>= 0) for multi-turn traces, -1 for independent requests.
      - ``delay_ns``: for turn k > 0 of a session, the think time after turn k-1 finishes; -1 otherwise.
      - ``line``: 1-based line number in the source file (for error messages and per-request records).
    Prefix blocks are stored CSR-style: request i owns ``hash_ids[hash_offsets[i]:hash_offsets[i+1]]``,
    each covering ``block_size`` prompt tokens (Mooncake: 512).
    """

    arrival_ns: I64
    isl: I64
    osl: I64
    hash_offsets: I64
    hash_ids: I64
    session: I64
    delay_ns: I64
    line: I64
    block_size: int = DEFAULT_BLOCK_SIZE
    source: str = "<memory>"
    format: str = "generic"
    notes: list[str] = field(default_factory=list)
    _prefix_keys: I64 | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.arrival_ns.shape[0])

    @property
    def has_hashes(self) -> bool:
        return bool(self.hash_ids.shape[0] > 0)

    @property
    def has_sessions(self) -> bool:
        return bool((self.session >= 0).any()) if len(self) else False

    def blocks_of(self, i: int) -> I64:
        return self.hash_ids[self.hash_offsets[i] : self.hash_offsets[i + 1]]

    def prefix_keys(self) -> I64:
        """Chained prefix keys aligned with ``hash_ids``: key j of a request identifies the whole prefix
        ``hash_ids[0..j]``, as vLLM's chained block hashes do, so a cache hit always means the whole prefix
        matches even if a trace reuses an id at a different position."""
        if self._prefix_keys is None:
            self._prefix_keys = chain_prefix_keys(self.hash_offsets, self.hash_ids)
        return self._prefix_keys


_SEED = 0x9E3779B97F4A7C15  # the key of the empty prefix
_M1, _M2, _M3 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
#: below this many requests still holding blocks at a position, one numpy pass costs more than finishing
#: those requests' remaining blocks in plain Python
_VECTOR_MIN_LIVE = 16


def chain_prefix_keys(offsets: I64, ids: I64) -> I64:
    """Chained 64-bit prefix keys: key j = mix(key j-1, id j), a splitmix64-style hash, so equal keys mean equal
    whole prefixes (vLLM chains its block hashes the same way, with SHA-256). With 64-bit keys the chance of
    any collision among 10^8 distinct prefixes is below 10^-3.

    Cost is linear in the total number of block ids: requests are visited longest first, so the numpy pass at
    block position ``pos`` touches only the requests that still have a block there, and once fewer than
    ``_VECTOR_MIN_LIVE`` remain their tails are finished in plain Python (one request with 10^5 blocks must
    not cost 10^5 passes over every request)."""
    n = offsets.shape[0] - 1
    keys = np.empty(ids.shape[0], dtype=np.uint64)
    if ids.shape[0] == 0:
        return keys.astype(np.int64)
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")  # longest first: the live requests are a prefix of order
    desc = lengths[order]
    starts = offsets[:-1][order]
    prev = np.full(n, _SEED, dtype=np.uint64)
    uids = ids.astype(np.uint64)
    ascending = desc[::-1]
    longest = int(desc[0])
    pos = 0
    with np.errstate(over="ignore"):
        while pos < longest:
            live = n - int(np.searchsorted(ascending, pos, side="right"))  # requests with > pos blocks
            if live < _VECTOR_MIN_LIVE:
                break
            at = starts[:live] + pos
            h = prev[:live] * np.uint64(_M1) ^ (uids[at] + np.uint64(_M2))
            h ^= h >> np.uint64(31)
            h *= np.uint64(_M3)
            h ^= h >> np.uint64(29)
            keys[at] = h
            prev[:live] = h
            pos += 1
    if pos < longest:
        _finish_tails(keys, ids, starts, desc, prev, pos)
    return keys.view(np.int64)


def _finish_tails(keys: npt.NDArray[np.uint64], ids: I64, starts: I64, lengths: I64,
                  prev: npt.NDArray[np.uint64], pos: int) -> None:
    """The same mix as the numpy pass, in Python integers, for the few requests still longer than ``pos``."""
    for r in range(int(np.searchsorted(-lengths, -pos, side="left"))):
        start, end = int(starts[r]), int(starts[r] + lengths[r])
        h = int(prev[r])
        out = []
        for v in ids[start + pos : end].tolist():
            h = ((h * _M1) & _MASK) ^ ((v + _M2) & _MASK)
            h ^= h >> 31
            h = (h * _M3) & _MASK
            h ^= h >> 29
            out.append(h)
        keys[start + pos : end] = np.asarray(out, dtype=np.uint64)
