"""Load request traces (Mooncake JSONL, Azure LLM CSV, generic CSV/JSONL) into a columnar :class:`Trace`.

Two parsers stand behind each format. The fast one hands the whole file to pyarrow's vectorised JSON/CSV
readers; it accepts a file only when every column has exactly the expected shape. Anything unusual (a bad
line, a mixed-type column, a missing field) sends the file to the slow, line-by-line parser, which either
reads it or raises an :class:`InputError` naming the file, the 1-based line, the field and what is allowed.
Both parsers produce the same raw columns, and the checks that do not depend on parsing (lengths, block
counts, sessions, time order) run once, vectorised, on those columns.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import importlib
import io
import json
import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import numpy.typing as npt

from llmreplay.errors import InputError
from llmreplay.trace.model import DEFAULT_BLOCK_SIZE, I64, MAX_SPAN_NS, Trace
from llmreplay.trace.transform import dense_sessions, take_rows
from llmreplay.units import NS_PER_MS, NS_PER_S

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("auto", "mooncake", "azure", "csv", "jsonl")

MISSING = int(np.iinfo(np.int64).min)  # "field absent" in the raw timestamp and delay columns
_MAX_INT = 2**62  # larger integers cannot be right and would overflow int64 arithmetic
#: the longest line a trace may have. One Mooncake line with 10^5 hash ids is about 1-2 MB, so 16 MiB admits
#: any real trace while a file without line breaks (``/dev/zero``, a binary blob) stops after 16 MiB.
MAX_LINE_BYTES = 1 << 24
_READ_CHUNK = 1 << 22

# Field names, first one canonical. Times carry their unit (ns per unit).
TIME_FIELDS: tuple[tuple[str, int], ...] = (
    ("timestamp", NS_PER_MS),
    ("created_time", NS_PER_MS),
    ("timestamp_ms", NS_PER_MS),
    ("arrival_s", NS_PER_S),
)
ISL_FIELDS = ("input_length", "input_tokens", "isl")
OSL_FIELDS = ("output_length", "output_tokens", "osl")
DELAY_FIELDS: tuple[tuple[str, int], ...] = (("delay", NS_PER_MS), ("delay_ms", NS_PER_MS))
HASH_FIELD = "hash_ids"
SESSION_FIELD = "session_id"
KNOWN_FIELDS = frozenset(
    [n for n, _ in TIME_FIELDS] + list(ISL_FIELDS) + list(OSL_FIELDS) + [n for n, _ in DELAY_FIELDS]
    + [HASH_FIELD, SESSION_FIELD]
)
AZURE_TIME, AZURE_ISL, AZURE_OSL = "TIMESTAMP", "ContextTokens", "GeneratedTokens"
_TIME_HELP = "arrival time: timestamp (ms; aliases created_time, timestamp_ms) or arrival_s (seconds)"
_STAMP_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?$")
_STAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*\n")
_ASCII_SPACE = " \t\n\r\x0b\x0c"


# ---------------------------------------------------------------------------------------------- raw columns
@dataclass
class _Raw:
    """Parsed but unchecked columns, in file order. ``MISSING`` marks an absent timestamp or delay."""

    ts_ns: I64
    isl: I64
    osl: I64
    hash_offsets: I64
    hash_ids: I64
    session: I64  # dense in order of first appearance in the file, -1 = no session
    delay_ns: I64
    line: I64
    session_keys: list[Any]  # original session_id of each dense id (for messages)
    names: dict[str, str]  # canonical column -> the field name the file used (for messages)
    notes: list[str] = field(default_factory=list)


def _i64(values: Any) -> I64:
    return np.asarray(values, dtype=np.int64)


# ---------------------------------------------------------------------------------------------- entry point
def load_trace(path: str | Path, fmt: str = "auto", block_size: int = DEFAULT_BLOCK_SIZE) -> Trace:
    """Load a trace file into a :class:`Trace` (arrivals normalised to start at 0, stably sorted).

    ``fmt``: ``auto`` (by extension and first line), ``mooncake``, ``jsonl`` (generic JSON lines; parsed like
    Mooncake), ``azure`` or ``csv`` (generic CSV). ``block_size``: prompt tokens per trace hash block.
    """
    fmt = (fmt or "auto").strip().lower()
    if fmt not in FORMATS:
        raise InputError(f"unknown trace format '{fmt}'; choose one of {', '.join(FORMATS)}.")
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise InputError(f"trace block size must be a positive whole number of tokens, got {block_size!r}.")
    p = Path(path)
    source = str(path)
    if not p.exists():
        raise InputError("no such trace file.", source=source)
    if p.is_dir():
        raise InputError("is a folder, not a trace file.", source=source)
    data = _read_bytes(p, source)
    if not data or data.isspace():
        raise InputError("the trace has no requests (the file is empty).", source=source)
    kind = _detect(p, data) if fmt == "auto" else fmt
    if kind in ("mooncake", "jsonl"):
        buf = [data]
        del data  # let the JSON parser free the text as soon as it has the columns
        raw = _load_json(buf, source)
        label = "mooncake" if raw.names.get("isl") in ("input_length", "input_tokens") else "jsonl"
        if fmt != "auto":
            label = fmt
    else:
        raw = _load_csv(data, source, azure=(kind == "azure"))
        label = kind
    return _finish(raw, source, label, block_size)


def detect_format(path: str | Path) -> str:
    """The format ``auto`` picks for this file: ``mooncake``, ``jsonl``, ``azure`` or ``csv``."""
    p = Path(path)
    data = _read_bytes(p, str(path))
    kind = _detect(p, data)
    if kind == "mooncake":
        try:
            obj = json.loads(_first_line(data))
        except ValueError:
            return "mooncake"
        if isinstance(obj, dict) and not any(k in obj for k in ("input_length", "input_tokens")):
            return "jsonl"
    return kind


def _read_bytes(p: Path, source: str) -> bytes:
    """The trace's bytes (BOM dropped), read in chunks so a file that is not text stops early: bytes that are
    not UTF-8 fail at once naming the line, and a line longer than :data:`MAX_LINE_BYTES` (``/dev/zero``, a
    binary blob without line breaks) fails after that many bytes instead of filling memory."""
    try:
        with gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb") as fh:
            data = _read_text_bytes(fh, source)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise InputError(f"cannot read the trace: {reason}.", source=source) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    return data


def _read_text_bytes(fh: io.BufferedIOBase, source: str) -> bytes:
    """Read ``fh`` to the end, checking UTF-8 and the line length chunk by chunk (O(1) work per chunk beyond
    the decode: only a line that spans chunks can be longer than a chunk)."""
    chunks: list[bytes] = []
    pos = 0  # bytes read before this chunk
    line_start = 0  # offset where the current (unfinished) line starts
    pending = b""  # an incomplete UTF-8 sequence at the end of the previous chunk
    while True:
        chunk = fh.read(_READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        first_nl = chunk.find(b"\n")
        end = pos + (first_nl if first_nl >= 0 else len(chunk))
        if end - line_start > MAX_LINE_BYTES:
            raise InputError(
                f"a line is longer than {MAX_LINE_BYTES >> 20} MiB (no line break in {MAX_LINE_BYTES:,} bytes): "
                "this does not look like a trace (one JSON object or CSV row per line).", source=source,
                line=_count_lines(chunks))
        if first_nl >= 0:
            line_start = pos + chunk.rfind(b"\n") + 1
        if pending or not chunk.isascii():  # ASCII (most traces) is UTF-8: skip the decode
            buf = pending + chunk if pending else chunk
            try:
                _, used = codecs.utf_8_decode(buf, "strict", False)
            except UnicodeDecodeError as exc:
                _not_utf8(chunks, pos - len(pending) + exc.start, buf[exc.start:exc.start + 1], source)
            pending = buf[used:]
        pos += len(chunk)
    if pending:
        _not_utf8(chunks, pos - len(pending), pending[:1], source)
    return b"".join(chunks)


def _count_lines(chunks: list[bytes], upto: int | None = None) -> int:
    """1-based number of the line holding byte ``upto`` (default: the last byte read)."""
    data = b"".join(chunks)
    return data.count(b"\n", 0, len(data) if upto is None else upto) + 1


def _not_utf8(chunks: list[bytes], offset: int, byte: bytes, source: str) -> NoReturn:
    raise InputError(f"the trace is not UTF-8 text (byte {byte!r} at byte offset {offset:,}); a trace is JSON "
                     "lines or CSV saved as UTF-8.", source=source, line=_count_lines(chunks, offset))


def _first_line(data: bytes) -> bytes:
    for chunk in io.BytesIO(data):
        if chunk.strip():
            return chunk.strip()
    return b""


def _detect(p: Path, data: bytes) -> str:
    name = p.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    first = _first_line(data)
    if name.endswith((".jsonl", ".json", ".ndjson")) or first.startswith(b"{"):
        return "mooncake"
    header = [h.strip().lower() for h in first.decode("utf-8", "replace").split(",")]
    if AZURE_TIME.lower() in header and AZURE_ISL.lower() in header:
        return "azure"
    return "csv"


def _line_numbers(data: bytes) -> I64 | None:
    """1-based numbers of the non-blank lines, or ``None`` when no line is blank (numbers are 1..n)."""
    end = len(data)
    while end and data[end - 1 : end].isspace():
        end -= 1
    nl = data.find(b"\n", 0, end)
    first_blank = nl >= 0 and (nl == 0 or data[:nl].isspace())
    if not first_blank and _BLANK_LINE.search(data, 0, end) is None:
        return None
    return _i64([i for i, text in enumerate(data.split(b"\n"), 1) if text.strip()])


# ---------------------------------------------------------------------------------------------- JSON lines
#: JSON text below this size is parsed line by line in Python: importing pyarrow costs more than pyarrow's
#: parser saves on it (a 3 MB, 12k-line trace parses in Python in about the time ``import pyarrow`` takes)
ARROW_MIN_BYTES = 8 << 20


def _load_json(buf: list[bytes], source: str) -> _Raw:
    """``buf`` holds the file's text; the fast path empties it once it no longer needs it."""
    raw = None
    if len(buf[0]) >= ARROW_MIN_BYTES:
        raw = _arrow_json(buf, _line_numbers(buf[0]))
    if raw is None:
        raw = _python_json(buf[0], source)
    return raw


def _json_loads() -> Callable[[bytes], Any]:
    try:
        mod = importlib.import_module("orjson")
    except ImportError:
        return json.loads
    loads: Callable[[bytes], Any] = mod.loads
    return loads


def _time_to_ns(v: Any, scale: int) -> int | None:
    """A JSON number in ``scale`` units -> integer ns (exact for integers; floats split so the whole part
    stays exact). ``None`` when ``v`` is not a finite number."""
    t = type(v)
    if t is int:
        return int(v) * scale if abs(v) < _MAX_INT // scale else None
    if t is float:
        fv = float(v)
        if not math.isfinite(fv) or abs(fv) >= _MAX_INT / scale:
            return None
        ip = math.floor(fv)
        return ip * scale + round((fv - ip) * scale)
    return None


def _whole(v: Any) -> int | None:
    t = type(v)
    if t is int:
        return int(v) if -_MAX_INT < v < _MAX_INT else None
    if t is float and math.isfinite(v) and float(v).is_integer() and abs(v) < _MAX_INT:
        return int(v)
    return None


def _python_json(data: bytes, source: str) -> _Raw:
    loads = _json_loads()
    # the C scanner json.loads ends in, called directly (typeshed does not declare the attribute)
    scan: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009
    ts: list[int] = []
    isl: list[int] = []
    osl: list[int] = []
    offsets: list[int] = [0]
    flat: list[Any] = []
    sess: list[int] = []
    delay: list[int] = []
    line: list[int] = []
    sess_ids: dict[Any, int] = {}
    sess_keys: list[Any] = []
    names: dict[str, str] = {}
    extra: dict[str, int] = {}
    absent = object()

    def fail(lineno: int, msg: str) -> InputError:
        return InputError(msg, source=source, line=lineno)

    # the text is UTF-8 (checked when read); a line the bare scanner does not take whole goes to ``loads``,
    # which parses it as before or raises the message below
    for lineno, text in enumerate(data.decode("utf-8").split("\n"), 1):
        if not text.strip(_ASCII_SPACE):  # blank as bytes.strip() sees it (str.strip() also drops U+00A0 etc.)
            continue
        try:
            line_text = text.strip(" \t\r")
            obj, end = scan(line_text, 0)
            if end != len(line_text):
                raise ValueError
        except (ValueError, StopIteration, RecursionError):
            try:
                obj = loads(text.encode("utf-8"))
            except ValueError as exc:
                raise fail(lineno, f"invalid JSON ({exc}); each line must hold one JSON object.") from None
            except RecursionError:
                raise fail(lineno, "JSON nested too deeply; each line must hold one flat JSON object.") from None
        if type(obj) is not dict:
            raise fail(lineno, f"expected a JSON object like {{\"timestamp\": 0, \"input_length\": 512, "
                               f"\"output_length\": 64}}, got {type(obj).__name__}.")
        used = 0
        # arrival time
        t_ns = MISSING
        for name, scale in TIME_FIELDS:
            v = obj.get(name, absent)
            if v is absent:
                continue
            used += 1
            names.setdefault("ts", name)
            got = _time_to_ns(v, scale)
            if got is None:
                unit = "seconds" if scale == NS_PER_S else "milliseconds"
                raise fail(lineno, f"field '{name}' must be a number ({unit}), got {v!r}.")
            t_ns = got
            break
        ts.append(t_ns)
        # lengths
        for canon, fields, out in (("isl", ISL_FIELDS, isl), ("osl", OSL_FIELDS, osl)):
            for name in fields:
                v = obj.get(name, absent)
                if v is absent:
                    continue
                used += 1
                names.setdefault(canon, name)
                n = _whole(v)
                if n is None:
                    raise fail(lineno, f"field '{name}' must be a whole number of tokens, got {v!r}.")
                out.append(n)
                break
            else:
                what = "input (prompt)" if canon == "isl" else "output"
                raise fail(lineno, f"missing field '{fields[0]}' (the {what} length in tokens; aliases: "
                                   f"{', '.join(fields[1:])}).")
        # prefix blocks
        h = obj.get(HASH_FIELD, absent)
        if h is not absent:
            used += 1
            if h is not None:
                if type(h) is not list:
                    raise fail(lineno, f"field 'hash_ids' must be a list of integers, got {h!r}.")
                flat.extend(h)
        offsets.append(len(flat))
        # session
        s = obj.get(SESSION_FIELD, absent)
        if s is not absent:
            used += 1
        if s is absent or s is None:
            sess.append(-1)
        else:
            if type(s) not in (str, int, float, bool):
                raise fail(lineno, f"field 'session_id' must be a JSON scalar (string or number), got {s!r}.")
            key = ("bool", s) if type(s) is bool else s
            sid = sess_ids.get(key)
            if sid is None:
                sid = len(sess_keys)
                sess_ids[key] = sid
                sess_keys.append(s)
            sess.append(sid)
        # think time
        d_ns = MISSING
        for name, scale in DELAY_FIELDS:
            v = obj.get(name, absent)
            if v is absent:
                continue
            used += 1
            if v is None:
                break
            names.setdefault("delay", name)
            got = _time_to_ns(v, scale)
            if got is None:
                raise fail(lineno, f"field '{name}' must be a number of milliseconds, got {v!r}.")
            d_ns = got
            break
        delay.append(d_ns)
        line.append(lineno)
        if used != len(obj):
            for k in obj:
                if k not in KNOWN_FIELDS:
                    extra[k] = extra.get(k, 0) + 1
    hash_ids = _hash_array(flat, offsets, line, source)
    notes = []
    if extra:
        notes.append("ignored fields not used by the replay: " + ", ".join(sorted(extra)))
    return _Raw(_i64(ts), _i64(isl), _i64(osl), _i64(offsets), hash_ids, _i64(sess), _i64(delay), _i64(line),
                sess_keys, names, notes)


def _hash_array(flat: list[Any], offsets: list[int], line: list[int], source: str) -> I64:
    """``flat`` as int64, or an InputError at the first request holding a non-integer block id."""
    try:
        arr = np.array(flat) if flat else np.zeros(0, dtype=np.int64)
    except (ValueError, TypeError, OverflowError):  # e.g. [[1, 2], [3]]: ragged nesting
        arr = np.zeros(0, dtype=object)
    if arr.ndim == 1 and arr.dtype.kind in "iu" and (not arr.size or (arr.max() < _MAX_INT
                                                                       and arr.min() > -_MAX_INT)):
        return arr.astype(np.int64)
    for r in range(len(offsets) - 1):
        for v in flat[offsets[r] : offsets[r + 1]]:
            if type(v) is list:
                raise InputError(f"field 'hash_ids' must be a flat list of integers (block ids), found the "
                                 f"nested list {_short(v)}; write e.g. [1, 2, 3].", source=source, line=line[r])
            if type(v) is not int or not -_MAX_INT < v < _MAX_INT:
                raise InputError(f"field 'hash_ids' must be a list of integers (block ids), found {_short(v)}.",
                                 source=source, line=line[r])
    raise AssertionError("unreachable: some block id above is not an int")  # pragma: no cover


def _short(v: Any, limit: int = 80) -> str:
    """``repr(v)`` cut to ``limit`` characters, for messages about values that may be huge."""
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PIECE_BYTES = 1 << 24
_NON_SPACE = re.compile(rb"\S")


def _arrow_json(buf: list[bytes], lines: I64 | None) -> _Raw | None:
    """The vectorised path; ``None`` when the file needs the line-by-line parser.

    The text goes to pyarrow in pieces of about 16 MiB (cut at line ends), each converted to numpy at once,
    so the peak memory stays near the size of the file plus the trace. On success ``buf`` is emptied (its
    text is no longer needed)."""
    import pyarrow as pa
    import pyarrow.json as pajson

    data = buf[0]
    size = len(data)
    pieces: list[_Raw] = []
    start = 0
    with memoryview(data) as view:
        while start < size:
            end = min(start + _PIECE_BYTES, size)
            if end < size:
                nl = data.find(b"\n", end)
                end = size if nl < 0 else nl + 1
            if _NON_SPACE.search(data, start, end) is not None:
                if _max_openers_per_line(data[start:end]) > _ARROW_MAX_NESTING:
                    return None  # pyarrow's JSON reader crashes on deep nesting; Python's raises
                try:
                    table = pajson.read_json(pa.BufferReader(pa.py_buffer(view[start:end])),
                                             read_options=pajson.ReadOptions(block_size=1 << 22))
                except pa.ArrowException:
                    return None
                try:
                    piece = _arrow_table(table)
                except pa.ArrowException:  # e.g. a list of nulls where a number belongs: arrow chokes
                    return None
                del table
                if piece is None:
                    return None
                pieces.append(piece)
            start = end
    n = sum(int(p.isl.shape[0]) for p in pieces)
    line = np.arange(1, n + 1, dtype=np.int64) if lines is None else lines
    if line.shape[0] != n or n == 0:
        return None
    del data
    buf.clear()
    if len(pieces) == 1:
        raw = pieces[0]
        raw.line = line
        return raw
    # merge: sessions get global dense ids in order of first appearance; names from the first piece using one
    keys: dict[Any, int] = {}
    sessions: list[I64] = []
    for piece in pieces:
        lut = np.empty(len(piece.session_keys) + 1, dtype=np.int64)
        lut[-1] = -1
        for j, k in enumerate(piece.session_keys):
            lut[j] = keys.setdefault(k, len(keys))
        sessions.append(lut[piece.session])  # index -1 -> lut[-1] = -1
    names: dict[str, str] = {}
    notes: set[str] = set()
    for piece in pieces:
        for k, v in piece.names.items():
            names.setdefault(k, v)
        notes.update(piece.notes)
    bases = np.cumsum([0] + [int(p.hash_offsets[-1]) for p in pieces[:-1]])
    offsets = np.concatenate([np.zeros(1, dtype=np.int64)]
                             + [p.hash_offsets[1:] + b for p, b in zip(pieces, bases, strict=True)])

    def cat(attr: str) -> I64:
        return np.concatenate([getattr(p, attr) for p in pieces])

    raw = _Raw(cat("ts_ns"), cat("isl"), cat("osl"), offsets, cat("hash_ids"), np.concatenate(sessions),
               cat("delay_ns"), line, list(keys), names, sorted(notes))
    return raw


#: brackets a line may open before it goes to the line-by-line parser instead of pyarrow's, whose recursive
#: JSON reader overflows the stack (a segfault, not an error) somewhere between 5,000 and 20,000 levels
_ARROW_MAX_NESTING = 1000
_NOT_OPENER = bytes(b for b in range(256) if b not in b"[{\n")


def _max_openers_per_line(piece: bytes) -> int:
    """Most ``[``/``{`` on one line of ``piece``: an upper bound on its JSON nesting (a Mooncake line has 2)."""
    kept = np.frombuffer(piece.translate(None, _NOT_OPENER), dtype=np.uint8)
    breaks = np.flatnonzero(kept == ord("\n"))
    if breaks.size == 0:
        return int(kept.size)
    gaps = np.diff(breaks, prepend=-1, append=kept.size) - 1
    return int(gaps.max())


def _arrow_table(table: pa.Table) -> _Raw | None:
    """One piece's columns (``line`` left empty), or ``None`` when the piece needs the slow parser."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return None
    cols = set(table.column_names)
    names: dict[str, str] = {}

    def pick(candidates: Sequence[str]) -> str | bool | None:
        present = [c for c in candidates if c in cols]
        if len(present) > 1:
            return False  # two aliases for one field: let the slow parser decide row by row
        return present[0] if present else None

    def column(name: str) -> pa.Array:
        return table.column(name).combine_chunks()

    # times
    tname = pick([t for t, _ in TIME_FIELDS])
    if tname is False:
        return None
    if tname is None:
        ts = np.full(n, MISSING, dtype=np.int64)
    else:
        assert isinstance(tname, str)
        got = _arrow_time(column(tname), dict(TIME_FIELDS)[tname])
        if got is None:
            return None
        ts = got
        names["ts"] = tname
    # lengths
    lengths: list[I64] = []
    for canon, fields in (("isl", ISL_FIELDS), ("osl", OSL_FIELDS)):
        lname = pick(fields)
        if not isinstance(lname, str):
            return None
        col = column(lname)
        if not pa.types.is_integer(col.type) or col.null_count:
            return None
        lengths.append(_arrow_numpy(col).astype(np.int64))
        names[canon] = lname
    # blocks
    offsets, hash_ids = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if HASH_FIELD in cols:
        htype = table.schema.field(HASH_FIELD).type
        if pa.types.is_list(htype) and (pa.types.is_integer(htype.value_type)
                                        or pa.types.is_null(htype.value_type)):
            got_h = _arrow_lists(table.column(HASH_FIELD))
            if got_h is None:
                return None
            offsets, hash_ids = got_h
        elif not pa.types.is_null(htype):
            return None
    # sessions
    session = np.full(n, -1, dtype=np.int64)
    keys: list[Any] = []
    if SESSION_FIELD in cols:
        col = column(SESSION_FIELD)
        t = col.type
        if not (pa.types.is_null(t) or pa.types.is_integer(t) or pa.types.is_string(t)
                or pa.types.is_floating(t)):
            return None
        if not pa.types.is_null(t):
            enc = pc.dictionary_encode(col)
            session = _arrow_numpy(enc.indices, fill=-1).astype(np.int64)
            keys = enc.dictionary.to_pylist()
    # delays
    dname = pick([d for d, _ in DELAY_FIELDS])
    if dname is False:
        return None
    delay = np.full(n, MISSING, dtype=np.int64)
    if isinstance(dname, str):
        dcol = column(dname)
        got = _arrow_time(dcol, dict(DELAY_FIELDS)[dname])
        if got is None:
            return None
        delay = got
        if not pa.types.is_null(dcol.type):
            names["delay"] = dname
    notes = []
    extra = sorted(cols - KNOWN_FIELDS)
    if extra:
        notes.append("ignored fields not used by the replay: " + ", ".join(extra))
    return _Raw(ts, lengths[0], lengths[1], offsets, hash_ids, session, delay, np.zeros(0, dtype=np.int64),
                keys, names, notes)


def _arrow_lists(col: pa.ChunkedArray) -> tuple[I64, I64] | None:
    """A chunked list<int> column -> CSR (offsets, values), one chunk at a time (no combined copy). Null
    lists are empty; ``None`` when a list holds a null."""
    import pyarrow.compute as pc

    offs: list[I64] = [np.zeros(1, dtype=np.int64)]
    vals: list[I64] = []
    base = 0
    for chunk in col.chunks:
        if len(chunk) == 0:
            continue
        values = chunk.flatten()
        if values.null_count:
            return None
        raw = _arrow_numpy(chunk.offsets).astype(np.int64)
        if chunk.null_count:  # a null list may still span values in arrow's layout: rebuild from lengths
            lengths = _arrow_numpy(pc.list_value_length(chunk)).astype(np.int64)
            raw = np.zeros(len(chunk) + 1, dtype=np.int64)
            np.cumsum(lengths, out=raw[1:])
        else:
            raw = raw - raw[0]
        offs.append(raw[1:] + base)
        base += int(raw[-1])
        if len(values):
            vals.append(_arrow_numpy(values).astype(np.int64))
    hash_ids = np.concatenate(vals) if vals else np.zeros(0, dtype=np.int64)
    if hash_ids.shape[0] != base:
        return None
    return np.concatenate(offs), hash_ids


def _arrow_time(col: pa.Array, scale: int) -> I64 | None:
    """A numeric arrow column in ``scale`` units -> int64 ns with nulls as ``MISSING``."""
    import pyarrow as pa

    t = col.type
    n = len(col)
    if pa.types.is_null(t):
        return np.full(n, MISSING, dtype=np.int64)
    if pa.types.is_integer(t):
        v = _arrow_numpy(col).astype(np.int64)
        if v.size and (np.abs(v).max() >= _MAX_INT // scale):
            return None
        out = v * scale
    elif pa.types.is_floating(t):
        f = _arrow_numpy(col).astype(np.float64)
        if not np.isfinite(f).all() or (f.size and np.abs(f).max() >= _MAX_INT / scale):
            return None
        out = _float_to_ns(f, scale)
    else:
        return None
    if col.null_count:
        out[~_arrow_valid(col)] = MISSING
    result: I64 = out
    return result


#: arrow's names of the numeric types whose numpy names differ
_NUMPY_NAMES = {"double": "float64", "float": "float32", "halffloat": "float16"}


def _arrow_numpy(arr: pa.Array, fill: int = 0) -> npt.NDArray[Any]:
    """A numeric arrow array as numpy, nulls replaced by ``fill``, read from its buffers: pyarrow's own
    ``to_numpy`` and ``fill_null`` import pandas when it is installed (~0.2 s of CPU), which a replay never needs."""
    n = len(arr)
    dtype = np.dtype(_NUMPY_NAMES.get(str(arr.type), str(arr.type)))
    data = arr.buffers()[1]
    if n == 0 or data is None:
        return np.full(n, fill, dtype=dtype)
    values = np.frombuffer(data, dtype=dtype, count=arr.offset + n)[arr.offset:]
    if arr.null_count:
        values = values.copy()
        values[~_arrow_valid(arr)] = fill
    return values


def _arrow_valid(arr: pa.Array) -> npt.NDArray[np.bool_]:
    """The validity of each slot (False: null), unpacked from arrow's bitmap."""
    n = len(arr)
    bitmap = arr.buffers()[0]
    if bitmap is None or not arr.null_count:
        return np.ones(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[arr.offset:arr.offset + n].astype(bool)


def _float_to_ns(f: npt.NDArray[np.float64], scale: int) -> I64:
    """Float times in ``scale`` units -> int ns: whole part exact, fraction rounded half-to-even, exactly as
    :func:`_time_to_ns` does for one value."""
    ip = np.floor(f)
    return ip.astype(np.int64) * scale + np.rint((f - ip) * scale).astype(np.int64)


# ---------------------------------------------------------------------------------------------- CSV
def _load_csv(data: bytes, source: str, azure: bool) -> _Raw:
    lines = _line_numbers(data)
    if lines is not None:
        parts = data.split(b"\n")
        data = b"\n".join(parts[i - 1] for i in lines.tolist())
    header_text = _first_line(data).decode("utf-8", "replace")
    try:
        header = next(csv.reader([header_text]))
    except csv.Error as exc:
        raise InputError(f"the first line is not a CSV header ({exc}).", source=source,
                         line=1 if lines is None else int(lines[0])) from None
    header = [h.strip() for h in header]
    header_line = 1 if lines is None else int(lines[0])
    if len(set(header)) != len(header):
        raise InputError(f"the CSV header names a column twice: {', '.join(header)}.", source=source,
                         line=header_line)
    table = _arrow_csv(data, header)
    if table is None:
        table = _python_csv(data, header, source, lines)
    n = table.num_rows
    row_lines = np.arange(2, n + 2, dtype=np.int64) if lines is None else lines[1:].copy()
    raw = _csv_columns(table, header, row_lines, header_line, source, azure)
    if n == 0:
        raise InputError("the trace has no requests (the CSV has a header but no rows).", source=source)
    return raw


def _arrow_csv(data: bytes, header: list[str]) -> pa.Table | None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError):
        return None


def _python_csv(data: bytes, header: list[str], source: str, lines: I64 | None) -> pa.Table:
    import pyarrow as pa

    text = data.decode("utf-8")  # checked as UTF-8 when read
    cols: list[list[str]] = [[] for _ in header]
    rows = csv.reader(io.StringIO(text))

    def file_line(k: int) -> int:  # 1-based line k of the non-blank text -> line of the file
        return k if lines is None else int(lines[min(k, lines.shape[0]) - 1])

    try:
        next(rows, None)
        for row in rows:
            if len(row) != len(header):
                raise InputError(f"expected {len(header)} comma-separated fields ({', '.join(header)}), found "
                                 f"{len(row)}.", source=source, line=file_line(rows.line_num))
            for c, v in zip(cols, row, strict=True):
                c.append(v)
    except csv.Error as exc:  # e.g. a stray carriage return or quote in binary garbage
        raise InputError(f"not a CSV row ({exc}).", source=source, line=file_line(max(rows.line_num, 1))) from None
    return pa.table({h: pa.array(c, type=pa.string()) for h, c in zip(header, cols, strict=True)})


def _csv_columns(table: pa.Table, header: list[str], line: I64, header_line: int, source: str,
                 azure: bool) -> _Raw:
    import pyarrow.compute as pc

    n = table.num_rows
    lower = {h.lower(): h for h in header}

    def col(name: str) -> pa.Array:
        arr = table.column(name).combine_chunks()
        return pc.utf8_trim_whitespace(arr)

    def find(candidates: Sequence[str]) -> str | None:
        present = [lower[c.lower()] for c in candidates if c.lower() in lower]
        if len(present) > 1:
            raise InputError(f"the CSV has both columns {' and '.join(present)}, which mean the same field; "
                             "keep one.", source=source, line=header_line)
        return present[0] if present else None

    names: dict[str, str] = {}
    notes: list[str] = []
    used: set[str] = set()
    if azure:
        for want in (AZURE_TIME, AZURE_ISL, AZURE_OSL):
            if want.lower() not in lower:
                raise InputError(f"an Azure LLM trace needs the columns {AZURE_TIME},{AZURE_ISL},"
                                 f"{AZURE_OSL}; the header has {', '.join(header)}.", source=source,
                                 line=header_line)
        tname, iname, oname = lower[AZURE_TIME.lower()], lower[AZURE_ISL.lower()], lower[AZURE_OSL.lower()]
        ts = _csv_stamps(col(tname), tname, line, source)
        isl = _csv_ints(col(iname), iname, line, source, "a whole number of tokens")
        osl = _csv_ints(col(oname), oname, line, source, "a whole number of tokens")
        names.update(ts=tname, isl=iname, osl=oname)
        used.update((tname, iname, oname))
        offsets, hash_ids = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        session = np.full(n, -1, dtype=np.int64)
        keys: list[Any] = []
        delay = np.full(n, MISSING, dtype=np.int64)
    else:
        time_col = find([t for t, _ in TIME_FIELDS])
        if time_col is None:
            ts = np.full(n, MISSING, dtype=np.int64)
        else:
            scale = {k.lower(): s for k, s in TIME_FIELDS}[time_col.lower()]
            ts = _csv_times(col(time_col), time_col, scale, line, source)
            names["ts"] = time_col
            used.add(time_col)
        lens = []
        for canon, fields in (("isl", ISL_FIELDS), ("osl", OSL_FIELDS)):
            lname = find(fields)
            if lname is None:
                what = "input (prompt)" if canon == "isl" else "output"
                raise InputError(f"the CSV has no column '{fields[-1]}' (the {what} length in tokens; "
                                 f"aliases: {', '.join(fields[:-1])}); the header has {', '.join(header)}.",
                                 source=source, line=header_line)
            lens.append(_csv_ints(col(lname), lname, line, source, "a whole number of tokens"))
            names[canon] = lname
            used.add(lname)
        isl, osl = lens
        hname = find([HASH_FIELD])
        if hname is None:
            offsets, hash_ids = np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        else:
            offsets, hash_ids = _csv_hashes(col(hname), hname, line, source)
            used.add(hname)
        sname = find([SESSION_FIELD])
        session = np.full(n, -1, dtype=np.int64)
        keys = []
        if sname is not None:
            scol = col(sname)
            enc = pc.dictionary_encode(_blank_to_null(scol))
            session = _arrow_numpy(enc.indices, fill=-1).astype(np.int64)
            keys = enc.dictionary.to_pylist()
            used.add(sname)
        dname = find([d for d, _ in DELAY_FIELDS])
        if dname is None:
            delay = np.full(n, MISSING, dtype=np.int64)
        else:
            delay = _csv_times(col(dname), dname, NS_PER_MS, line, source)
            names["delay"] = dname
            used.add(dname)
    extra = [h for h in header if h not in used]
    if extra:
        notes.append("ignored columns not used by the replay: " + ", ".join(extra))
    return _Raw(ts, isl, osl, offsets, hash_ids, session, delay, line, keys, names, notes)


def _first_bad(values: list[Any], ok: Callable[[Any], bool]) -> int:
    for i, v in enumerate(values):
        if not ok(v):
            return i
    return -1


def _blank_to_null(arr: pa.Array) -> pa.Array:
    """Empty strings of a string column as nulls (built without ``pa.scalar``, which imports pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    blank = pc.invert(pc.cast(pc.utf8_length(arr), pa.bool_()))
    return pc.if_else(blank, pa.nulls(1, arr.type)[0], arr)


def _csv_ints(arr: pa.Array, name: str, line: I64, source: str, what: str) -> I64:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        ints = pc.cast(arr, pa.int64())
        if ints.null_count:  # cannot happen (strings are never null here), but never read a null slot
            raise ValueError
        out: I64 = _arrow_numpy(ints).astype(np.int64)
        if out.size and np.abs(out).max() >= _MAX_INT:
            raise ValueError
        return out
    except (pa.ArrowException, ValueError):
        pass
    values = arr.to_pylist()

    def ok(v: str) -> bool:
        try:
            return abs(int(v)) < _MAX_INT
        except ValueError:
            return False

    i = _first_bad(values, ok)
    v = values[i]
    msg = f"column '{name}' is empty; it must be {what}." if v == "" else \
        f"column '{name}' must be {what}, got '{v}'."
    raise InputError(msg, source=source, line=int(line[max(i, 0)]))


def _csv_times(arr: pa.Array, name: str, scale: int, line: I64, source: str) -> I64:
    """Numbers in ``scale`` units -> ns; empty cells are ``MISSING`` (allowed for later session turns)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    filled = _blank_to_null(arr)  # cast to a number leaves the nulls null; read as 0, then MISSING
    empty = ~_arrow_valid(filled)
    try:
        out = _arrow_numpy(pc.cast(filled, pa.int64())).astype(np.int64)
        if out.size and np.abs(out).max() >= _MAX_INT // scale:
            raise ValueError
        out = out * scale
    except (pa.ArrowException, ValueError):
        try:
            f = _arrow_numpy(pc.cast(filled, pa.float64())).astype(np.float64)
            if not np.isfinite(f).all() or (f.size and np.abs(f).max() >= _MAX_INT / scale):
                raise ValueError from None
            out = _float_to_ns(f, scale)
        except (pa.ArrowException, ValueError):
            values = arr.to_pylist()

            def ok(v: str) -> bool:
                if v == "":
                    return True
                try:
                    x = float(v)
                except ValueError:
                    return False
                return math.isfinite(x) and abs(x) < _MAX_INT / scale

            i = _first_bad(values, ok)
            unit = "seconds" if scale == NS_PER_S else "milliseconds"
            raise InputError(f"column '{name}' must be a number ({unit}), got '{values[max(i, 0)]}'.",
                             source=source, line=int(line[max(i, 0)])) from None
    out[empty] = MISSING
    result: I64 = out
    return result


def _stamp_py(s: str) -> int | None:
    m = _STAMP_RE.match(s)
    if m is None:
        return None
    y, mo, d, hh, mm, ss, frac = m.groups()
    try:
        days = date(int(y), int(mo), int(d)).toordinal()
    except ValueError:
        return None
    if int(hh) > 23 or int(mm) > 59 or int(ss) > 60:
        return None
    secs = days * 86400 + int(hh) * 3600 + int(mm) * 60 + int(ss)
    return secs * NS_PER_S + int((frac or "").ljust(9, "0"))


def _csv_stamps(arr: pa.Array, name: str, line: I64, source: str) -> I64:
    """``YYYY-MM-DD HH:MM:SS.fffffff`` -> exact integer ns (only differences matter, so the epoch is free)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if pc.all(pc.match_substring_regex(arr, _STAMP_PATTERN)).as_py() is not False:
            stamps = pc.cast(arr, pa.timestamp("ns")).cast(pa.int64())
            if not stamps.null_count:
                return _arrow_numpy(stamps).astype(np.int64)
    except pa.ArrowException:
        pass
    values = arr.to_pylist()
    out = np.empty(len(values), dtype=np.int64)
    epoch = date(1970, 1, 1).toordinal() * 86400 * NS_PER_S
    for i, v in enumerate(values):
        got = _stamp_py(v)
        if got is None:
            raise InputError(f"column '{name}' must be a time written YYYY-MM-DD HH:MM:SS.fffffff (up to "
                             f"9 fractional digits, no time zone), got '{v}'.", source=source,
                             line=int(line[i]))
        out[i] = got - epoch
    return out


def _csv_hashes(arr: pa.Array, name: str, line: I64, source: str) -> tuple[I64, I64]:
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = _blank_to_null(arr)
    try:
        lists = pc.cast(pc.utf8_split_whitespace(cells), pa.list_(pa.int64()))
        lengths = _arrow_numpy(pc.list_value_length(lists)).astype(np.int64)  # a null (blank) cell: no blocks
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = lists.flatten()  # skips the values a null list may span
        if values.null_count:
            raise ValueError
        ids = _arrow_numpy(values).astype(np.int64)
        if ids.shape[0] != offsets[-1] or (ids.size and np.abs(ids).max() >= _MAX_INT):
            raise ValueError
        return offsets, ids
    except (pa.ArrowException, ValueError):
        pass
    for i, cell in enumerate(arr.to_pylist()):
        for tok in cell.split():
            try:
                ok = abs(int(tok)) < _MAX_INT
            except ValueError:
                ok = False
            if not ok:
                raise InputError(f"column '{name}' must hold space-separated integers (block ids), found "
                                 f"'{tok}'.", source=source, line=int(line[i]))
    raise InputError(f"column '{name}' could not be read as block ids.", source=source)  # pragma: no cover


# ---------------------------------------------------------------------------------------------- checks
def _finish(raw: _Raw, source: str, fmt: str, block_size: int) -> Trace:
    n = int(raw.isl.shape[0])
    if n == 0:
        raise InputError("the trace has no requests.", source=source)
    names = raw.names
    line = raw.line

    def at(mask: npt.NDArray[np.bool_]) -> int:
        return int(np.flatnonzero(mask)[0])

    isl_name = names.get("isl", "input_length")
    osl_name = names.get("osl", "output_length")
    bad = raw.isl < 1
    if bad.any():
        i = at(bad)
        raise InputError(f"field '{isl_name}' is {int(raw.isl[i])}: every request needs a prompt of at least "
                         "one token (a whole number >= 1).", source=source, line=int(line[i]))
    bad = raw.osl < 1
    if bad.any():
        i = at(bad)
        raise InputError(f"field '{osl_name}' is {int(raw.osl[i])}: every request must generate at least one "
                         "token (a whole number >= 1).", source=source, line=int(line[i]))
    counts = np.diff(raw.hash_offsets)
    cap = -(-raw.isl // block_size)
    bad = counts > cap
    if bad.any():
        i = at(bad)
        raise InputError(
            f"field 'hash_ids' lists {int(counts[i])} blocks, but a prompt of {int(raw.isl[i])} tokens fills "
            f"at most {int(cap[i])} block{'' if cap[i] == 1 else 's'} of {block_size} tokens. Give at most "
            f"ceil({isl_name} / {block_size}) block ids (fewer is fine: prompt tokens beyond the hashed "
            "blocks are private), or set the right --trace-block-size.", source=source, line=int(line[i]))
    given = raw.delay_ns != MISSING
    bad = given & (raw.delay_ns < 0)
    if bad.any():
        i = at(bad)
        raise InputError(f"field '{names.get('delay', 'delay')}' is negative: a think time must be >= 0 ms.",
                         source=source, line=int(line[i]))
    ts = raw.ts_ns.copy()
    has_ts = ts != MISSING
    delay = np.full(n, -1, dtype=np.int64)
    notes = list(raw.notes)
    tname = names.get("ts", "timestamp")
    session = raw.session
    in_session = session >= 0
    if in_session.any():
        rows = np.flatnonzero(in_session)
        order = rows[np.argsort(session[rows], kind="stable")]  # grouped by session, turns in file order
        s_sorted = session[order]
        first = np.ones(order.shape[0], dtype=bool)
        first[1:] = s_sorted[1:] != s_sorted[:-1]
        firsts = order[first]
        later_pos = np.flatnonzero(~first)
        later, prev = order[later_pos], order[later_pos - 1]
        no_ts = ~has_ts[firsts]
        if no_ts.any():
            i = int(firsts[at(no_ts)])
            raise InputError(f"missing {_TIME_HELP}; the first turn of a session needs one.", source=source,
                             line=int(line[i]))
        stray = given[firsts]
        if stray.any():
            notes.append(f"{int(stray.sum())} first turn(s) of sessions carry a delay, which only applies "
                         "to later turns: ignored.")
        neither = ~has_ts[later] & ~given[later]
        if neither.any():
            i = int(later[at(neither)])
            raise InputError(f"a later turn of session {raw.session_keys[int(session[i])]!r} has neither a "
                             f"timestamp nor a delay; give one ({_TIME_HELP}; or delay in ms).",
                             source=source, line=int(line[i]))
        if (~has_ts[later]).any():  # recorded time of a turn without one: previous turn + its delay
            for i, p in zip(later.tolist(), prev.tolist(), strict=True):
                if not has_ts[i]:
                    ts[i] = ts[p] + raw.delay_ns[i]
        back = ts[later] < ts[prev]
        if back.any():
            k = at(back)
            i, p = int(later[k]), int(prev[k])
            raise InputError(
                f"session {raw.session_keys[int(session[i])]!r}: this turn's {tname} is earlier than the "
                f"previous turn's (line {int(line[p])}); a session's turns must be in time order.",
                source=source, line=int(line[i]))
        delay[later] = np.where(given[later], raw.delay_ns[later], ts[later] - ts[prev])
    missing = ~has_ts & ~in_session
    if missing.any():
        i = at(missing)
        raise InputError(f"missing {_TIME_HELP}.", source=source, line=int(line[i]))
    stray = given & ~in_session
    if stray.any():
        notes.append(f"{int(stray.sum())} request(s) without a session_id carry a delay: ignored.")

    if int(ts.max()) - int(ts.min()) > MAX_SPAN_NS:
        i, j = int(np.argmin(ts)), int(np.argmax(ts))
        raise InputError(f"the arrival times span more than 146 years (line {int(line[i])} to line {int(line[j])}); "
                         f"check the time unit of '{tname}'.", source=source, line=int(line[j]))
    trace = Trace(
        arrival_ns=ts, isl=raw.isl, osl=raw.osl, hash_offsets=raw.hash_offsets, hash_ids=raw.hash_ids,
        session=session.copy(), delay_ns=delay, line=line, block_size=block_size, source=source, format=fmt,
        notes=notes,
    )
    if n > 1:
        back = ts[1:] < ts[:-1]
        if back.any():
            k = at(back) + 1
            notes.append(
                f"arrival times go backwards ({int(back.sum())} time(s), first at line {int(line[k])}); "
                "requests were sorted stably by arrival time (a session keeps its turn order)."
            )
            trace = take_rows(trace, np.argsort(ts, kind="stable"))
    trace.session = dense_sessions(trace.session)
    trace.arrival_ns = trace.arrival_ns - trace.arrival_ns[0]
    return trace

