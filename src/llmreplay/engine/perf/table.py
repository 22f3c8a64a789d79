"""``perf_model: {"kind": "table", "path": ...}``: step times interpolated from a user's measured points.

The point of this kind is to replay with *your* engine's timings — a vLLM benchmark, a profiler run, the
forward-pass metrics of a live deployment — instead of a model of them.

File (CSV with a header row, ``#`` comment lines allowed; or NPZ with one 1-D array per column):

=====================  ==========================================================================
column                 meaning
=====================  ==========================================================================
``prefill_tokens``     new prompt tokens prefilled in the step (one chunk)
``prefill_context``    optional: tokens already cached in front of that chunk (default 0)
``decode_requests``    requests decoding one token in the step
``decode_kv_tokens``   KV tokens those requests read in total (or ``decode_context``: per request)
``step_ms``            the step's wall time in ms (or ``step_s`` in seconds)
=====================  ==========================================================================

Each row is a *prefill point* (``decode_requests`` 0) or a *decode point* (``prefill_tokens`` 0); a table
needs at least two distinct prompt sizes without context and two decode points. Missing columns count as 0.
Dynamo's profiler output is read too: a ``profile_results_dir`` (``selected_prefill_interpolation/`` and
``selected_decode_interpolation/raw_data.npz``), or one of those NPZ files — ``prefill_isl`` →
``prefill_ttft`` (ms) as fresh prefill points, and ``x_kv_usage × max_kv_tokens`` KV tokens at
``y_context_length`` per request → ``z_itl`` (ms) as decode points.

How a step is timed (all pieces piecewise linear between measured points, so every measured point is
reproduced, and continued linearly past the ends):

* **prefill** of fresh prompts: ``f(T)``, interpolated over the measured prompt sizes ``T``; the fixed cost
  ``f(0)`` is ``f`` continued linearly to zero tokens (never below zero);
* **cached context** costs ``a × new × context`` on top (attention of each new token over the cached ones),
  ``a`` fitted by least squares to the rows with ``prefill_context`` > 0, or, without such rows, read off the
  curvature of ``f``: a fresh prompt of T tokens does T²/2 attention pairs, so ``a = 2 c₂`` of the quadratic
  fit ``f ≈ c₀ + c₁T + c₂T²``;
* **decode**: ``g(n, KV)``, interpolated over the context per request ``KV / n`` within each measured batch
  size ``n`` (a batch size with one point borrows the KV slope of the others), and linearly in ``n`` between
  measured batch sizes at the same context;
* a **mixed step** is one forward pass over every token: ``f(Σ new + n) + a·Σ new·context + [g(n, KV) −
  g(n, 0)]`` — the decoding requests count as tokens through the layers, and what reading their KV adds is
  the decode curve's rise above zero KV. (Adding a whole decode step instead would pay the weights twice.)

Measured times are noisy; each interpolated curve is made non-decreasing (the L∞-closest monotone fit: the
midpoint of the running maximum and the reversed running minimum), and the decode curves are made
non-decreasing in ``n`` too (at each context, the running maximum over batch sizes), so the model keeps the
:class:`PerfModel` contract. Prefill rows with context are fitted (one coefficient), not reproduced;
:meth:`TableModel.fit_report` gives the largest gap to the measured points.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmreplay.engine.perf.base import F64, I64, MAX_STEP_S, PerfModel, prefill_chunks
from llmreplay.engine.perf.hw import HardwareSetup
from llmreplay.errors import InputError
from llmreplay.fileio import read_text

COLUMNS = ("prefill_tokens", "prefill_context", "decode_requests", "decode_kv_tokens", "decode_context",
           "step_ms", "step_s")
TABLE_PARAMS: dict[str, str] = {
    "path": "CSV/NPZ of measured steps, or a Dynamo profile_results_dir (required)",
}


# ---- reading ---------------------------------------------------------------------------------------------
@dataclass
class MeasuredPoints:
    """Measured steps, split by kind. Times in ms."""

    prefill_tokens: F64
    prefill_context: F64
    prefill_ms: F64
    decode_requests: F64
    decode_kv_tokens: F64
    decode_ms: F64
    source: str
    notes: list[str] = field(default_factory=list)


def _columns_from_csv(path: Path) -> dict[str, F64]:
    text = read_text(path, "measured steps")
    numbered = [(k, ln) for k, ln in enumerate(text.splitlines(), start=1)
                if ln.strip() and not ln.lstrip().startswith("#")]
    if not numbered:
        raise InputError("empty file: a header row and measured steps are needed", source=str(path))
    try:
        parsed = [(k, row) for (k, _), row in zip(numbered, csv.reader(ln for _, ln in numbered), strict=True)]
    except (csv.Error, ValueError) as exc:  # ValueError: a quoted field spanning lines shortens the rows
        raise InputError(f"not a CSV file ({exc})", source=str(path)) from None
    header = [h.strip().lower() for h in parsed[0][1]]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InputError(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"columns: {', '.join(COLUMNS)}", source=str(path))
    rows: list[list[float]] = []
    for k, row in parsed[1:]:
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields, the header has {len(header)}", source=str(path), line=k)
        try:
            rows.append([float(x) for x in row])
        except ValueError:
            raise InputError(f"not a number in {row!r}", source=str(path), line=k) from None
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(header))
    return {h: data[:, i] for i, h in enumerate(header)}


def _npz(path: Path) -> dict[str, F64]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k.lower(): np.asarray(z[k], dtype=np.float64).ravel() for k in z.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read NPZ: {exc}", source=str(path)) from None


def _dynamo(arrays: Mapping[str, F64], cols: dict[str, list[F64]], notes: list[str]) -> bool:
    """Append Dynamo profiler arrays (if these are some) to ``cols``; True when they were."""
    found = False
    if "prefill_isl" in arrays and "prefill_ttft" in arrays:
        isl = arrays["prefill_isl"]
        cols["prefill_tokens"].append(isl)
        cols["step_ms"].append(arrays["prefill_ttft"])
        cols["decode_requests"].append(np.zeros_like(isl))
        cols["decode_kv_tokens"].append(np.zeros_like(isl))
        cols["prefill_context"].append(np.zeros_like(isl))
        notes.append("Dynamo prefill profile: TTFT of one prompt taken as its prefill step time")
        found = True
    if {"x_kv_usage", "y_context_length", "z_itl", "max_kv_tokens"} <= set(arrays):
        kv = arrays["x_kv_usage"] * float(arrays["max_kv_tokens"][0])
        ctx = np.maximum(arrays["y_context_length"], 1.0)
        cols["decode_requests"].append(np.maximum(np.rint(kv / ctx), 1.0))
        cols["decode_kv_tokens"].append(kv)
        cols["step_ms"].append(arrays["z_itl"])
        cols["prefill_tokens"].append(np.zeros_like(kv))
        cols["prefill_context"].append(np.zeros_like(kv))
        notes.append("Dynamo decode profile: batch = KV usage × max_kv_tokens / context length")
        found = True
    return found


def load_measured_points(path: str | Path) -> MeasuredPoints:
    """Read a measured-steps file (see the module docstring) into prefill and decode points."""
    p = Path(path).expanduser()
    src = str(p)
    notes: list[str] = []
    dyn: dict[str, list[F64]] = {k: [] for k in ("prefill_tokens", "prefill_context", "decode_requests",
                                                 "decode_kv_tokens", "step_ms")}
    if p.is_dir():
        for sub in ("selected_prefill_interpolation", "selected_decode_interpolation"):
            f = p / sub / "raw_data.npz"
            if f.is_file():
                _dynamo(_npz(f), dyn, notes)
        if not notes:
            raise InputError("a folder must be a Dynamo profile_results_dir holding selected_prefill_interpolation/"
                             "raw_data.npz or selected_decode_interpolation/raw_data.npz", source=src)
        cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in dyn.items()}
    elif not p.is_file():
        raise InputError("no such file (measured steps: a CSV or NPZ, or a Dynamo profile_results_dir)", source=src)
    elif p.suffix.lower() == ".npz":
        arrays = _npz(p)
        if _dynamo(arrays, dyn, notes):
            cols = {k: np.concatenate(v) if v else np.zeros(0) for k, v in dyn.items()}
        else:
            unknown = sorted(set(arrays) - set(COLUMNS))
            if unknown:
                raise InputError(f"unknown array{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                                 f"arrays: {', '.join(COLUMNS)} (or Dynamo's profiler arrays)", source=src)
            cols = dict(arrays)
    else:
        cols = _columns_from_csv(p)
    return _split(cols, src, notes)


def _split(cols: dict[str, F64], src: str, notes: list[str]) -> MeasuredPoints:
    lengths = {len(v) for v in cols.values()}
    if len(lengths) != 1:
        raise InputError("columns have different lengths", source=src)
    n = lengths.pop()
    if "step_ms" in cols and "step_s" in cols:
        raise InputError("give step_ms or step_s, not both", source=src)
    if "step_ms" in cols:
        ms = cols["step_ms"]
    elif "step_s" in cols:
        ms = cols["step_s"] * 1e3
    else:
        raise InputError("no step time column: add step_ms (or step_s)", source=src)
    zero = np.zeros(n)
    new = cols.get("prefill_tokens", zero)
    ctx = cols.get("prefill_context", zero)
    req = cols.get("decode_requests", zero)
    if "decode_kv_tokens" in cols and "decode_context" in cols:
        raise InputError("give decode_kv_tokens or decode_context, not both", source=src)
    kv = cols["decode_kv_tokens"] if "decode_kv_tokens" in cols else req * cols.get("decode_context", zero)
    for name, v in (("prefill_tokens", new), ("prefill_context", ctx), ("decode_requests", req),
                    ("decode_kv_tokens", kv)):
        bad = np.flatnonzero(~np.isfinite(v) | (v < 0))
        if bad.size:
            raise InputError(f"{name} must be a number >= 0 (row {int(bad[0]) + 1} of the data)", source=src)
    bad = np.flatnonzero(~np.isfinite(ms) | (ms <= 0) | (ms > MAX_STEP_S * 1e3))
    if bad.size:
        raise InputError(f"step time must be > 0 and at most {MAX_STEP_S:g} s (row {int(bad[0]) + 1} of the data "
                         f"has {float(ms[bad[0]]):g} ms)", source=src)
    is_p = (new > 0) & (req == 0)
    is_d = (new == 0) & (req > 0)
    mixed = np.flatnonzero(~(is_p | is_d))
    if mixed.size:
        raise InputError(
            f"row {int(mixed[0]) + 1} of the data is neither a prefill point (prefill_tokens > 0, "
            "decode_requests 0) nor a decode point (prefill_tokens 0, decode_requests > 0); mixed steps are "
            "composed from the two (see docs/perf-models.md)", source=src)
    fresh = np.unique(new[is_p & (ctx == 0)])
    if fresh.size < 2:
        raise InputError("need prefill points (decode_requests 0, no prefill_context) at two or more prompt "
                         f"sizes; found {fresh.size}", source=src)
    if int(is_d.sum()) < 2:
        raise InputError(f"need two or more decode points (prefill_tokens 0); found {int(is_d.sum())}", source=src)
    return MeasuredPoints(new[is_p], ctx[is_p], ms[is_p], req[is_d], kv[is_d], ms[is_d], src, notes)


# ---- curves ----------------------------------------------------------------------------------------------
def monotone_fit(y: F64) -> F64:
    """The L∞-closest non-decreasing sequence: midpoint of running max and reversed running min."""
    hi = np.maximum.accumulate(y)
    lo = np.minimum.accumulate(y[::-1])[::-1]
    out: F64 = (hi + lo) / 2.0
    return out


@dataclass(frozen=True)
class Curve:
    """Piecewise-linear, non-decreasing ``y(x)`` through measured points, continued linearly past both ends
    (down to ``y`` = 0 at most) with the end segments' slopes, or ``slope`` when there is one point."""

    x: F64
    y: F64
    lo_slope: float
    hi_slope: float

    @classmethod
    def fit(cls, x: F64, y: F64, slope: float = 0.0) -> Curve:
        xs, inv = np.unique(x, return_inverse=True)
        ys = monotone_fit(np.bincount(inv, weights=y) / np.bincount(inv))  # duplicates averaged
        if xs.size == 1:
            return cls(xs, ys, slope, slope)
        lo = (ys[1] - ys[0]) / (xs[1] - xs[0])
        hi = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return cls(xs, ys, float(lo), float(hi))

    def __call__(self, x: F64) -> F64:
        v = np.interp(x, self.x, self.y)
        v = np.where(x > self.x[-1], self.y[-1] + self.hi_slope * (x - self.x[-1]), v)
        out: F64 = np.where(x < self.x[0], np.maximum(self.y[0] + self.lo_slope * (x - self.x[0]), 0.0), v)
        return out

    def at(self, x: float) -> float:
        return float(self(np.asarray([x], dtype=np.float64))[0])


class TableModel(PerfModel):
    """Step times interpolated from measured points (see the module docstring)."""

    kind = "table"

    def __init__(self, points: MeasuredPoints) -> None:
        self.points = points
        pts = points
        fresh = pts.prefill_context == 0
        self.prefill = Curve.fit(pts.prefill_tokens[fresh], pts.prefill_ms[fresh])
        self.attn_ms_per_pair = self._attention_coefficient()
        # decode: one curve over the context per request (KV / batch) for each measured batch size (a batch
        # size measured at one point borrows the common KV slope), then the running maximum over batch sizes,
        # tabulated on one context axis, so at a given context time never drops as the batch grows
        kv_slope = self._common_kv_slope()
        self.batches = np.unique(pts.decode_requests)
        ctx = pts.decode_kv_tokens / pts.decode_requests
        per_batch = [Curve.fit(ctx[pts.decode_requests == b], pts.decode_ms[pts.decode_requests == b], kv_slope * b)
                     for b in self.batches]
        lo, hi = float(ctx.min()), float(ctx.max())
        fine = np.geomspace(max(lo, 1.0), max(hi, 2.0), 64) if hi > lo else np.zeros(0)
        axis = np.unique(np.concatenate([ctx, fine]))
        envelope = np.maximum.accumulate(np.array([c(axis) for c in per_batch]), axis=0)
        # end slopes: steepest rise above the axis and gentlest below it among batch sizes up to each one, so
        # the continuation past the measured range stays non-decreasing in the batch size too
        hi_slopes = np.maximum.accumulate([c.hi_slope for c in per_batch])
        lo_slopes = np.minimum.accumulate([c.lo_slope for c in per_batch])
        self.decode_curves = [Curve(axis, row, float(lo_s), float(hi_s))
                              for row, lo_s, hi_s in zip(envelope, lo_slopes, hi_slopes, strict=True)]
        self._segments: dict[int, tuple[int, float]] = {}

    # ---- fitted pieces -----------------------------------------------------------------------------------
    def _attention_coefficient(self) -> float:
        """ms per (new token × cached token) pair: from the context rows if any, else the prompt curve."""
        pts = self.points
        with_ctx = pts.prefill_context > 0
        if with_ctx.any():
            work = pts.prefill_tokens[with_ctx] * pts.prefill_context[with_ctx]
            extra = pts.prefill_ms[with_ctx] - self.prefill(pts.prefill_tokens[with_ctx])
            return max(float(np.dot(work, extra) / np.dot(work, work)), 0.0)
        t, y = self.prefill.x, self.prefill.y
        if t.size < 3:
            return 0.0
        c2 = float(np.polyfit(t, y, 2)[0])
        return max(2.0 * c2, 0.0)

    def _common_kv_slope(self) -> float:
        """ms per KV token shared by batch sizes measured at one point only: the mean within-batch slope, or
        a least-squares fit ms ≈ c₀ + c₁·n + c₂·KV over all decode points."""
        pts = self.points
        slopes = []
        for b in np.unique(pts.decode_requests):
            m = pts.decode_requests == b
            if np.unique(pts.decode_kv_tokens[m]).size >= 2:
                slopes.append(float(np.polyfit(pts.decode_kv_tokens[m], pts.decode_ms[m], 1)[0]))
        if slopes:
            return max(float(np.mean(slopes)), 0.0)
        a = np.column_stack([np.ones_like(pts.decode_ms), pts.decode_requests, pts.decode_kv_tokens])
        coef, *_ = np.linalg.lstsq(a, pts.decode_ms, rcond=None)
        return max(float(coef[2]), 0.0)

    def _segment(self, n: int) -> tuple[int, float]:
        """Batch-size segment ``i`` and weight ``w`` for ``n`` (``w`` outside [0, 1] continues the end
        segments); cached per ``n``."""
        seg = self._segments.get(n)
        if seg is None:
            b = self.batches
            if b.size == 1:
                seg = (0, 0.0)
            else:
                i = int(np.clip(np.searchsorted(b, n, side="right") - 1, 0, b.size - 2))
                seg = (i, float((n - b[i]) / (b[i + 1] - b[i])))
            self._segments[n] = seg
        return seg

    def decode_ms(self, n: int, kv: F64) -> F64:
        """Decode-only steps of ``n`` requests reading ``kv`` KV tokens (context ``kv / n`` each): linear in
        ``n`` between the measured batch sizes at that context and continued past them; below the smallest,
        never under a forward pass of ``n`` prompt tokens (``f(n)``). With one measured batch size the time
        depends on the context only."""
        i, w = self._segment(n)
        ctx = kv / n
        if len(self.decode_curves) == 1:
            return self.decode_curves[0](ctx)
        out: F64 = (1.0 - w) * self.decode_curves[i](ctx) + w * self.decode_curves[i + 1](ctx)
        if w < 0:
            out = np.maximum(out, max(self.prefill.at(float(n)), 1e-3))
        return out

    # ---- PerfModel ---------------------------------------------------------------------------------------
    def step_s(
        self,
        prefill_new: Sequence[int],
        prefill_ctx: Sequence[int],
        n_decode: int,
        decode_kv_tokens: int,
    ) -> float:
        chunks = prefill_chunks(prefill_new, prefill_ctx)
        if not chunks:
            return self.decode_step_s(n_decode, decode_kv_tokens)
        tokens = sum(n for n, _ in chunks) + max(n_decode, 0)
        ms = self.prefill.at(tokens) + self.attn_ms_per_pair * sum(n * c for n, c in chunks)
        if n_decode > 0:
            dec = self.decode_ms(n_decode, np.asarray([decode_kv_tokens, 0], dtype=np.float64))
            ms += max(float(dec[0] - dec[1]), 0.0)
        return ms * 1e-3

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        kv = np.asarray(decode_kv_tokens, dtype=np.float64)
        if n_decode <= 0:
            out0: F64 = np.full(kv.shape[0], max(self.prefill.at(0.0), 1e-3) * 1e-3)
            return out0
        out: F64 = self.decode_ms(int(n_decode), kv) * 1e-3
        return out

    def describe(self) -> str:
        p = self.points
        return (f"table ({Path(p.source).name}: {p.prefill_ms.size} prefill points, {p.decode_ms.size} decode "
                f"points, {self.batches.size} batch sizes)")

    def fit_report(self) -> dict[str, float]:
        """Largest relative gap between the model and the measured points (0 where a point is reproduced)."""
        pts = self.points
        pre = np.array([self.step_s([int(n)], [int(c)], 0, 0) * 1e3
                        for n, c in zip(pts.prefill_tokens, pts.prefill_context, strict=True)])
        dec = np.array([float(self.decode_steps_s(int(n), np.asarray([int(k)]))[0]) * 1e3
                        for n, k in zip(pts.decode_requests, pts.decode_kv_tokens, strict=True)])
        return {"prefill_max_rel_err": float(np.max(np.abs(pre / pts.prefill_ms - 1))),
                "decode_max_rel_err": float(np.max(np.abs(dec / pts.decode_ms - 1))),
                "attention_ms_per_million_pairs": self.attn_ms_per_pair * 1e6}


def build_table(params: Mapping[str, Any], hw: HardwareSetup) -> TableModel:
    """Registry builder for ``perf_model: {"kind": "table", "path": ...}``."""
    path = params["path"]
    if not isinstance(path, str) or not path.strip():
        raise InputError(f"perf_model (table): field 'path' must be a file path (got {path!r}).")
    return TableModel(load_measured_points(path))
