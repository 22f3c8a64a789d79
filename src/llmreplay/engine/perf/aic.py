"""``perf_model: "aic"``: NVIDIA AIConfigurator's (AIC) database model, answered from a precomputed grid.

AIC (``pip install 'llmreplay[aic]'``) predicts step times from kernel measurements of real engines (vLLM,
SGLang, TensorRT-LLM) on real GPUs. One AIC prediction costs 5-10 µs and compiling a model ~1.3 s; a replay
times tens of thousands of steps and fast-forwards decode stretches with arrays of thousands of KV totals, so
the replay never calls AIC per step. Instead, once per (model, system, backend, version, TP, KV dtype), we
ask AIC for three tables on log-spaced integer axes and interpolate them with numpy:

* ``P[new, ctx]`` — a prefill-only step of one chunk of ``new`` tokens after ``ctx`` cached tokens
  (``predict_prefill_latency(1, ctx + new, prefix=ctx)``);
* ``D[batch, ctx]`` — a decode-only step of ``batch`` requests with ``ctx`` tokens of context each
  (``predict_decode_latency(batch, ctx, osl=2)``: one step);
* ``S[tokens]`` — the part of a step that does not depend on attention (GEMMs, norms, all-reduce, fixed
  per-step cost) for ``tokens`` tokens, from AIC's own split of a mixed step (``mixed_step_breakdown``).

``mixed_step: "sequential"`` (Dynamo's mocker) times a step as the mocker does: a batch of ``b`` prefill chunks
as AIC's batch of ``b`` requests at their integer mean length and prefix (which is not ``b`` single chunks:
AIC's batched attention costs 3-10 % more at a 20-80k prefix), then the decode batch at its integer mean
context. It asks AIC itself for both, memoised (a few microseconds a call): the grid's interpolation is close,
but a few microseconds a step shift a pass's end past a planner tick over a minute of back-to-back passes.

Interpolation is piecewise linear *in the token counts* between knots (bilinear on the 2-D tables); the
knots are every integer up to 16, then 8 per octave (tokens, batch; plus the row counts AIC measures GEMMs
at) or 4 per octave (context). Beyond the last knot the last segment's slope continues. The tables are then
made non-decreasing (the lower monotone envelope, see :func:`_monotone`; ``"monotone": false`` keeps AIC's
raw values) so the model keeps the :class:`PerfModel` contract where AIC's own tables do not. The error
against direct AIC calls is measured in ``tests/engine/perf/test_aic.py`` and listed in
``docs/perf-models.md``.

A step of one kind only is read straight off its table: a lone prefill chunk is ``P``, a decode-only step
is ``D`` at the mean context ``KV / batch``. A mixed step is composed the way AIC composes its own
``mixed_step_latency`` — shared non-attention work over all the step's tokens, plus each part's attention:

    t = S(Σ new + n_decode) + Σ_chunks [P(new, ctx) − S(new)] + [D(n_decode, KV / n_decode) − S(n_decode)]

with one correction: attention kernels run once per layer for the whole batch in vLLM, so the fixed
attention floor of a 1-token chunk is counted once, not once per chunk (each further chunk adds
``max(0, P − S − floor)``).

Nothing reaches the network: the model is always handed to AIC as a local folder (the ones shipped under
``llmreplay/data/models/``, or a user's folder) or as an id whose config AIC bundles. Grids are cached in
process and on disk (``~/.cache/llmreplay/aic``, or ``$LLMREPLAY_CACHE_DIR``), keyed by the AIC version and
the model files' contents.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import time
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from llmreplay.engine.perf.base import F64, I64, PerfModel, prefill_chunks
from llmreplay.engine.perf.hw import HardwareSetup
from llmreplay.engine.perf.models import MODELS, get_model, kv_dtype_name
from llmreplay.errors import InputError

#: bump when the grid layout or its construction changes: old on-disk caches are then ignored
GRID_VERSION = 1
AIC_BACKENDS = ("vllm", "sglang", "trtllm")
DEFAULT_BACKEND = "vllm"
INSTALL_HINT = "pip install 'llmreplay[aic]'"


# ---- axes ------------------------------------------------------------------------------------------------
def knots(hi: int, per_octave: int, dense_up_to: int = 16, start: int = 1, steps: bool = False) -> I64:
    """Integer knots: every integer from ``start`` to ``dense_up_to``, then ``per_octave`` per doubling up to
    ``hi`` (included). Small counts matter most (batch 1-16 decode steps are where the fixed cost lives).

    ``steps`` (token and batch axes, i.e. GEMM rows) adds the row counts AIC measures its GEMMs at — each
    multiple of 16 up to 256 and of 256 up to 4,352, each power of two, and each of those + 1. AIC's GEMM
    time jumps between M and M + 1 there (one more kernel tile) and AIC interpolates linearly in between, so
    a knot on each side of every jump lets linear interpolation reproduce its table instead of smearing a
    jump over a whole segment."""
    dense = np.arange(start, dense_up_to + 1, dtype=np.float64)
    octaves = np.log2(hi / dense_up_to)
    n = int(np.ceil(octaves * per_octave))
    parts = [dense, dense_up_to * 2.0 ** (np.arange(1, n + 1) / per_octave), np.asarray([hi], dtype=np.float64)]
    if steps:
        edges = np.concatenate([np.arange(16, 257, 16), np.arange(256, 4353, 256),
                                2.0 ** np.arange(0, int(np.log2(hi)) + 1)])
        parts += [edges, edges + 1]
    out = np.unique(np.rint(np.concatenate(parts)).astype(np.int64))
    return out[(out >= start) & (out <= hi)]


@functools.cache
def grid_axes() -> tuple[I64, I64, I64, I64]:
    """The grid's axes (built when a grid is, not at import: every run imports this module):

    * new prefill tokens of a chunk, and total tokens of a step (S): 1 … 131,072;
    * cached context in front of a prefill chunk: 0 … 1,048,576;
    * decode batch: 1 … 4,096;
    * context per decoding request: 1 … 1,048,576."""
    return (knots(2**17, 8, steps=True), np.concatenate([[0], knots(2**20, 4)]).astype(np.int64),
            knots(4096, 8, steps=True), knots(2**20, 4))


# ---- interpolation ---------------------------------------------------------------------------------------
def _bracket(axis: list[float], x: float) -> tuple[int, float]:
    """Segment ``i`` and weight ``w`` with value = (1 − w)·v[i] + w·v[i+1]: linear in ``x`` inside the axis,
    continuing the last segment above it (``w`` > 1), clamped to the first knot below it."""
    if x <= axis[0]:
        return 0, 0.0
    i = min(bisect_right(axis, x) - 1, len(axis) - 2)
    return i, (x - axis[i]) / (axis[i + 1] - axis[i])


def _bracket_vec(axis: F64, x: F64) -> tuple[I64, F64]:
    """Vectorised :func:`_bracket`. (Ufuncs in place of ``np.clip`` and ``np.searchsorted``, whose Python-level
    wrappers cost more than the work on the short arrays of a stretch; the same integers.)"""
    i = axis.searchsorted(x, side="right").astype(np.int64, copy=False)
    i -= 1
    np.maximum(i, 0, out=i)
    np.minimum(i, axis.shape[0] - 2, out=i)
    lo = axis[i]
    w = np.maximum((x - lo) / (axis[i + 1] - lo), 0.0)
    return i, w


def _monotone(table: F64) -> F64:
    """Non-decreasing along every axis, as the engine's contract asks: the *lower* monotone envelope,
    ``t(x) = min over y ≥ x of AIC(y)``, taken along each axis in turn (which keeps the axes already done
    monotone).

    Why the lower one: a step can always be padded to a larger one (vLLM pads decode batches to its CUDA-graph
    sizes), so a smaller batch never costs more than a larger one. AIC's tables break this in places — by a few
    percent in BF16 GEMMs (a 7-token step above an 8-token one), and as a saw-tooth in its vLLM FP8 GEMM data
    on Hopper, where the time jumps just above each row count AIC measured (256 → 257: ×2) and falls back until
    the next. The envelope keeps every value that no larger step undercuts — AIC's measured points at the
    tile boundaries, so its reference figures are reproduced — and replaces each peak by the next boundary's
    value, the staircase a padded kernel follows."""
    out = np.array(table, dtype=np.float64)
    for ax in range(out.ndim):
        out = np.flip(np.minimum.accumulate(np.flip(out, axis=ax), axis=ax), axis=ax)
    return out


@dataclass(frozen=True)
class AicGrid:
    """The three tables (milliseconds, as AIC gives them) and their axes; see the module docstring."""

    tokens: F64  # axis of S and of P's first dimension
    prefill_ctx: F64
    batch: F64
    decode_ctx: F64
    shared_ms: F64  # S[tokens]
    prefill_ms: F64  # P[tokens, prefill_ctx]
    decode_ms: F64  # D[batch, decode_ctx]
    meta: dict[str, Any]

    def save(self, path: Path) -> None:
        """Write atomically (a concurrent reader sees the old file or the new one, never half of one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with tmp.open("wb") as fh:
            np.savez_compressed(fh, tokens=self.tokens, prefill_ctx=self.prefill_ctx, batch=self.batch,
                                decode_ctx=self.decode_ctx, shared_ms=self.shared_ms, prefill_ms=self.prefill_ms,
                                decode_ms=self.decode_ms, meta=np.asarray(json.dumps(self.meta)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> AicGrid:
        with np.load(path) as z:
            arrays = {k: np.asarray(z[k], dtype=np.float64) for k in
                      ("tokens", "prefill_ctx", "batch", "decode_ctx", "shared_ms", "prefill_ms", "decode_ms")}
            meta = json.loads(str(z["meta"]))
        return cls(meta=meta, **arrays)


# ---- what to ask AIC for ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AicTarget:
    """One AIC engine configuration. ``model_arg`` is what AIC receives: a local folder or a bundled id."""

    model_name: str
    model_arg: str
    system: str
    backend: str
    backend_version: str | None
    tp: int
    kv_dtype: str  # "bfloat16" or "fp8" (AIC's names)

    def label(self) -> str:
        version = f" {self.backend_version}" if self.backend_version else ""
        return (f"{self.model_name} on {self.system}, {self.backend}{version}, TP{self.tp}, "
                f"{'fp8' if self.kv_dtype == 'fp8' else 'bf16'} KV")


def shipped_models_dir() -> Path:
    """``llmreplay/data/models``: one folder per model we name (``org__name``), each an HF ``config.json``
    (plus ``hf_quant_config.json`` for FP8 checkpoints), so AIC never downloads a config."""
    return Path(str(resources.files("llmreplay"))) / "data" / "models"


def shipped_model_folder(model_id: str) -> Path | None:
    folder = shipped_models_dir() / model_id.replace("/", "__")
    return folder if (folder / "config.json").is_file() else None


def aic_version() -> str | None:
    """The installed ``aiconfigurator`` version, or None when the extra is not installed (no import)."""
    for dist in ("aiconfigurator-core", "aiconfigurator"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def aic_available() -> bool:
    try:
        import aiconfigurator_core  # noqa: F401
    except ImportError:
        return False
    return True


def _require_aic() -> None:
    if not aic_available():
        raise InputError(
            "perf_model 'aic' needs NVIDIA AIConfigurator, which is not installed: "
            f"{INSTALL_HINT} (or choose perf_model 'roofline', the default)."
        )


@contextlib.contextmanager
def _quiet_aic() -> Iterator[None]:
    """AIC logs a warning per low-fidelity database table it loads; that is noise for a replay."""
    log = logging.getLogger("aiconfigurator_core")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


@functools.cache
def aic_databases() -> dict[str, dict[str, list[str]]]:
    """system → backend → database versions that AIC ships (read from its files, nothing loaded)."""
    from aiconfigurator_core.sdk import perf_database

    with _quiet_aic():
        found = perf_database.get_supported_databases()
    return {s: {b: list(v) for b, v in bk.items() if v} for s, bk in sorted(found.items())}


def aic_bundled_models() -> list[str]:
    """Hugging Face ids whose config AIC ships (usable offline by id)."""
    from aiconfigurator_core.sdk import common

    return sorted(common.DefaultHFModels)


def _model_choices() -> str:
    ours = [m for m in MODELS if shipped_model_folder(m) is not None]
    return (f"shipped with llmreplay: {', '.join(ours)}; bundled with AIC: {', '.join(aic_bundled_models())}; "
            "or a local folder holding the model's config.json (and hf_quant_config.json for FP8)")


def resolve_model_arg(name_or_path: str) -> tuple[str, str]:
    """(display name, what to hand AIC) for a model name or folder — never something AIC would download."""
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.name == "config.json":
        path = path.parent
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"perf_model (aic): model folder {path} has no config.json.")
        return str(path), str(path.resolve())
    try:
        canonical = get_model(name_or_path).name
    except InputError:
        canonical = name_or_path
    folder = shipped_model_folder(canonical)
    if folder is not None:
        return canonical, str(folder)
    if name_or_path in aic_bundled_models():
        return name_or_path, name_or_path
    raise InputError(
        f"perf_model (aic): no offline config for model '{name_or_path}' (AIC would try to download it, "
        f"and a replay never touches the network). Models: {_model_choices()}. Give a folder with "
        '{"kind": "aic", "model_path": "/path/to/folder"} or aic_model_path.'
    )


def resolve_target(params: Mapping[str, Any], hw: HardwareSetup) -> AicTarget:
    """The AIC configuration for an engine: system, TP and KV dtype from the hardware, the model from
    ``params['model_path']`` (set from ``aic_model_path`` by :func:`aic_perf_spec`) or the hardware's model,
    the backend from ``params['backend']`` (``aic_backend``), default vLLM."""
    backend = str(params.get("backend") or DEFAULT_BACKEND).strip().lower()
    if backend not in AIC_BACKENDS:
        raise InputError(f"perf_model (aic): unknown backend '{backend}'. AIC backends: {', '.join(AIC_BACKENDS)}.")
    version = params.get("backend_version")
    if version is not None and not isinstance(version, str):
        raise InputError(f"perf_model (aic): field 'backend_version' must be a string (got {version!r}).")
    raw_model = params.get("model_path") or hw.model.name
    if not isinstance(raw_model, str):
        raise InputError(f"perf_model (aic): field 'model_path' must be a string (got {raw_model!r}).")
    name, model_arg = resolve_model_arg(raw_model)
    return AicTarget(name, model_arg, hw.gpu.name, backend, version, hw.tp,
                     "fp8" if kv_dtype_name(hw.kv_dtype) == "fp8" else "bfloat16")


def _check_database(target: AicTarget) -> str:
    """The database version AIC will use; a clear error listing what AIC has when it lacks the request."""
    from aiconfigurator_core.sdk import perf_database

    try:
        with _quiet_aic():
            version = str(perf_database.resolve_query_version(target.system, target.backend,
                                                              target.backend_version or "current"))
    except Exception:  # AIC raises ValueError; only now pay for listing every database (~1 s)
        version = ""
    if version:
        return version
    dbs = aic_databases()
    have = dbs.get(target.system, {})
    if target.system not in dbs:
        listing = "; ".join(f"{s}: {', '.join(bk)}" for s, bk in dbs.items())
        raise InputError(f"perf_model (aic): AIC has no data for system '{target.system}'. "
                         f"AIC systems and backends: {listing}.")
    if target.backend not in have:
        has = ", ".join(f"{b} ({', '.join(v)})" for b, v in have.items())
        raise InputError(f"perf_model (aic): AIC has no {target.backend} data for {target.system}; it has {has}.")
    raise InputError(f"perf_model (aic): AIC has no {target.backend} {target.backend_version or ''} data for "
                     f"{target.system}; versions: {', '.join(have[target.backend])}.")


def compile_handle(target: AicTarget) -> Any:
    """Compile AIC's engine for ``target`` (~1.3 s). Errors become an :class:`InputError` that says what AIC
    has."""
    _require_aic()
    version = _check_database(target)
    from aiconfigurator_core.sdk.engine import EngineHandle

    try:
        with _quiet_aic():
            handle = EngineHandle.compile(target.model_arg, target.system, target.backend, backend_version=version,
                                          tp_size=target.tp, kvcache_quant_mode=target.kv_dtype)
            # some gaps (e.g. FP8 GEMMs on a GPU without FP8 tensor cores) only show when predicting
            handle.predict_prefill_latency(1, 16, 0)
            handle.predict_decode_latency(1, 16, 2)
            handle.mixed_step_breakdown(16, 1, 16, 2, 0)
            return handle
    except Exception as exc:  # AIC raises ValueError, KeyError and its own types for an unsupported combination
        raise InputError(
            f"perf_model (aic): AIC cannot model {target.label()}: {type(exc).__name__}: {exc}. "
            f"Models: {_model_choices()}."
        ) from None


# ---- building and caching the grid -----------------------------------------------------------------------
_GRIDS: dict[str, AicGrid] = {}
_HANDLES: dict[str, Any] = {}


def cache_dir() -> Path:
    env = os.environ.get("LLMREPLAY_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "aic"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmreplay" / "aic"


def _files_digest(model_arg: str) -> str:
    """Hash of the model's config files (a folder's contents, or the id of an AIC-bundled config)."""
    h = hashlib.sha256()
    folder = Path(model_arg)
    if folder.is_dir():
        for name in ("config.json", "hf_quant_config.json"):
            f = folder / name
            if f.is_file():
                h.update(name.encode() + b"\0" + f.read_bytes())
    else:
        h.update(model_arg.encode())
    return h.hexdigest()[:16]


def grid_key(target: AicTarget) -> str:
    parts = [f"grid{GRID_VERSION}", f"aic{aic_version()}", target.system, target.backend,
             target.backend_version or "current", f"tp{target.tp}", target.kv_dtype, _files_digest(target.model_arg)]
    return "-".join(p.replace("/", "_") for p in parts)


def handle_for(target: AicTarget) -> Any:
    """The compiled AIC engine for ``target`` (compiled once per process)."""
    key = grid_key(target)
    if key not in _HANDLES:
        _HANDLES[key] = compile_handle(target)
    return _HANDLES[key]


class _DirectAic:
    """AIC's own answers for Dynamo's mocker's timing (``mixed_step: sequential``), memoised: a prefill batch
    ``(batch, isl, prefix)`` and a decode step ``(batch, ctx)``. The compiled engine is fetched once; AIC logs
    only while it loads its tables, so the first call of each kind runs quietened."""

    def __init__(self, target: AicTarget) -> None:
        self.target = target
        self._handle: Any = None
        self._prefill: dict[tuple[int, int, int], float] = {}
        self._decode: dict[tuple[int, int], float] = {}

    def _h(self) -> Any:
        if self._handle is None:
            self._handle = handle_for(self.target)
        return self._handle

    def prefill_ms(self, batch: int, isl: int, prefix: int) -> float:
        key = (batch, isl, prefix)
        ms = self._prefill.get(key)
        if ms is None:
            with _quiet_aic():
                ms = self._prefill[key] = float(self._h().predict_prefill_latency(batch, isl, prefix))
        return ms

    def decode_ms(self, batch: int, ctx: int) -> float:
        key = (batch, ctx)
        ms = self._decode.get(key)
        if ms is None:
            with _quiet_aic() if not self._decode else contextlib.nullcontext():
                ms = self._decode[key] = float(self._h().predict_decode_latency(batch, ctx, 2))
        return ms


def build_grid(handle: Any, meta: dict[str, Any]) -> AicGrid:
    """Ask AIC for the three tables (~40k predictions, well under a second)."""
    tokens, prefill_ctx, batch, decode_ctx = grid_axes()
    with _quiet_aic():
        shared = np.array([handle.mixed_step_breakdown(int(t), 0, int(t), 2, 0)[1] for t in tokens])
        prefill = np.array([[handle.predict_prefill_latency(1, int(c + n), int(c)) for c in prefill_ctx]
                            for n in tokens])
        decode = np.array([[handle.predict_decode_latency(int(b), int(c), 2) for c in decode_ctx] for b in batch])
    return AicGrid(tokens.astype(np.float64), prefill_ctx.astype(np.float64), batch.astype(np.float64),
                   decode_ctx.astype(np.float64), shared, prefill, decode, meta)


def load_grid(target: AicTarget, *, use_disk_cache: bool = True) -> AicGrid:
    """The grid for ``target``: from this process's cache, else the disk cache, else built from AIC."""
    _require_aic()
    key = grid_key(target)
    grid = _GRIDS.get(key)
    if grid is not None:
        return grid
    path = cache_dir() / f"{key}.npz"
    if use_disk_cache and path.is_file():
        try:
            grid = AicGrid.load(path)
        except (OSError, ValueError, KeyError):
            grid = None  # a damaged cache file is rebuilt
    if grid is None:
        t0 = time.perf_counter()
        handle = handle_for(target)
        version = _check_database(target)
        meta = {"target": target.label(), "aic_version": aic_version(), "backend_version": version,
                "grid_version": GRID_VERSION}
        grid = build_grid(handle, meta)
        grid.meta["build_s"] = round(time.perf_counter() - t0, 3)
        if use_disk_cache:
            with contextlib.suppress(OSError):  # a read-only home only costs the rebuild next time
                grid.save(path)
    _GRIDS[key] = grid
    return grid


# ---- the perf model --------------------------------------------------------------------------------------
class AicModel(PerfModel):
    """Step times from AIC, interpolated on a precomputed grid (see the module docstring)."""

    kind = "aic"

    def __init__(self, target: AicTarget, grid: AicGrid, *, monotone: bool = True,
                 mixed_step: str = "fused") -> None:
        self.target = target
        self.grid = grid
        self.monotone = monotone
        #: "fused" (vLLM: a step runs one forward pass, its GEMMs over every prefill and decode token at once,
        #: each chunk's own attention) or "sequential" (Dynamo's mocker: the prefill batch's time at its mean
        #: chunk, then the decode batch's, each asked of AIC itself at the mocker's integer means)
        self.mixed_step = mixed_step
        self._direct = _DirectAic(target)
        g = grid
        tables = {"shared": g.shared_ms, "prefill": g.prefill_ms, "decode": g.decode_ms}
        if monotone:
            fixed = {k: _monotone(v) for k, v in tables.items()}
            #: largest relative change the monotone fit made to each of AIC's tables (perf show prints it)
            self.monotone_change = {k: float(np.max(np.abs(fixed[k] - v) / v)) for k, v in tables.items()}
            tables = fixed
        else:
            self.monotone_change = {k: 0.0 for k in tables}
        self._tok = [float(x) for x in g.tokens]
        self._pctx = [float(x) for x in g.prefill_ctx]
        self._batch = [float(x) for x in g.batch]
        self._dctx_arr = g.decode_ctx
        self._dctx = [float(x) for x in g.decode_ctx]
        self._shared = [float(x) for x in tables["shared"]]
        self._prefill = [[float(x) for x in row] for row in tables["prefill"]]
        self._decode = tables["decode"]
        # attention floor of a 1-token chunk, counted once per step (see the module docstring)
        self._attn_floor = max(self._prefill[0][0] - self._shared[0], 0.0)
        self._rows: dict[int, F64] = {}
        self._row_lists: dict[int, list[float]] = {}

    # ---- table look-ups (milliseconds) -------------------------------------------------------------------
    def shared_ms(self, tokens: float) -> float:
        i, w = _bracket(self._tok, tokens)
        return (1.0 - w) * self._shared[i] + w * self._shared[i + 1]

    def prefill_ms(self, new: float, ctx: float) -> float:
        """One prefill chunk of ``new`` tokens after ``ctx`` cached tokens, alone in its step."""
        i, a = _bracket(self._tok, new)
        j, b = _bracket(self._pctx, ctx)
        p = self._prefill
        return ((1 - a) * ((1 - b) * p[i][j] + b * p[i][j + 1])
                + a * ((1 - b) * p[i + 1][j] + b * p[i + 1][j + 1]))

    def _decode_row(self, n: int) -> F64:
        """D[n, ·] over the context axis (interpolated between batch knots), cached per batch size."""
        row = self._rows.get(n)
        if row is None:
            i, w = _bracket(self._batch, float(n))
            row = (1.0 - w) * self._decode[i] + w * self._decode[i + 1]
            self._rows[n] = row
        return row

    def decode_ms_one(self, n: int, kv_tokens: float) -> float:
        """:meth:`decode_ms` for one step, in plain Python (the engine times many single steps; numpy's
        per-call overhead would dominate). Same arithmetic, so both paths agree to the last bit."""
        row = self._row_lists.get(n)
        if row is None:
            row = [float(x) for x in self._decode_row(n)]
            self._row_lists[n] = row
        j, w = _bracket(self._dctx, max(kv_tokens / n, self._dctx[0]))
        return (1.0 - w) * row[j] + w * row[j + 1]

    def decode_ms(self, n: int, kv_tokens: F64) -> F64:
        """Decode-only steps of ``n`` requests reading ``kv_tokens`` KV tokens in total (mean context)."""
        ctx = np.maximum(np.asarray(kv_tokens, dtype=np.float64) / n, self._dctx_arr[0])
        row = self._decode_row(n)
        j, w = _bracket_vec(self._dctx_arr, ctx)
        out: F64 = (1.0 - w) * row[j] + w * row[j + 1]
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
        if len(chunks) == 1 and n_decode <= 0:
            return self.prefill_ms(*chunks[0]) * 1e-3
        if self.mixed_step == "sequential":
            decode = self._direct.decode_ms(n_decode, decode_kv_tokens // n_decode) if n_decode > 0 else 0.0
            return (self._mocker_prefill_ms(chunks) + decode) * 1e-3
        total = sum(n for n, _ in chunks) + max(n_decode, 0)
        ms = self.shared_ms(total)
        for k, (n, c) in enumerate(chunks):
            attn = self.prefill_ms(n, c) - self.shared_ms(n)
            ms += max(attn, 0.0) if k == 0 else max(attn - self._attn_floor, 0.0)
        if n_decode > 0:
            dec = self.decode_ms_one(n_decode, float(decode_kv_tokens))
            ms += max(dec - self.shared_ms(n_decode), 0.0)
        return ms * 1e-3

    def _mocker_prefill_ms(self, chunks: list[tuple[int, int]]) -> float:
        """The prefill batch as Dynamo's mocker times it (``predict_prefill_duration``): one AIC prefill of
        ``len(chunks)`` requests at the batch's integer mean length (prefix + chunk) and mean prefix, asked of
        AIC itself (the grid has no batch axis, and its interpolation is off by up to 3 % for a batch: enough
        to move a pass's end past a planner tick in a closed-loop comparison)."""
        b = len(chunks)
        ctx = sum(c for _, c in chunks) // b
        isl = sum(n + c for n, c in chunks) // b
        return self._direct.prefill_ms(b, isl, ctx)

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        if self.mixed_step == "sequential" and n_decode > 0:
            # the mocker's decode batch (``predict_decode_time``): AIC itself at the integer mean context
            n, dec = int(n_decode), self._direct.decode_ms
            ms = [dec(n, k // n) for k in np.asarray(decode_kv_tokens).tolist()]
            return np.asarray(ms, dtype=np.float64) * 1e-3
        kv = np.asarray(decode_kv_tokens, dtype=np.float64)
        if n_decode <= 0:
            out0: F64 = np.full(kv.shape[0], self._shared[0] * 1e-3, dtype=np.float64)
            return out0
        if kv.shape[0] == 1:
            return np.asarray([self.decode_ms_one(int(n_decode), float(kv[0])) * 1e-3], dtype=np.float64)
        out: F64 = self.decode_ms(int(n_decode), kv) * 1e-3
        return out

    def describe(self) -> str:
        """E.g. ``aic (AIConfigurator 0.12.0: vllm 0.24.0 database, bf16 KV, grid-interpolated)``; the run header
        names the GPU, model and TP beside it."""
        version = self.grid.meta.get("backend_version", "")
        kv = "fp8" if self.target.kv_dtype == "fp8" else "bf16"
        return (f"aic (AIConfigurator {self.grid.meta.get('aic_version', '?')}: {self.target.backend} {version} "
                f"database, {kv} KV, grid-interpolated" + ("" if self.monotone else ", not made monotone") + ")")

    # ---- direct AIC calls (validation only: never on the replay path) ------------------------------------
    def direct_prefill_ms(self, new: int, ctx: int) -> float:
        with _quiet_aic():
            return float(handle_for(self.target).predict_prefill_latency(1, int(ctx + new), int(ctx)))

    def direct_decode_ms(self, n: int, ctx: int) -> float:
        with _quiet_aic():
            return float(handle_for(self.target).predict_decode_latency(int(n), int(ctx), 2))

    def direct_mixed_ms(self, prefill_tokens: int, n_decode: int, isl: int, osl: int = 2) -> float:
        """AIC's own mixed step: ``prefill_tokens`` tokens of ``isl``-token prompts plus ``n_decode``
        requests at context ≈ isl + osl/2."""
        with _quiet_aic():
            return float(handle_for(self.target).mixed_step_latency(int(prefill_tokens), int(n_decode), int(isl),
                                                                    int(osl), 0))


AIC_PARAMS: dict[str, str] = {
    "backend": "AIC backend: vllm (default), sglang or trtllm (Dynamo's aic_backend)",
    "backend_version": "AIC database version of that backend (default: AIC's current one)",
    "model_path": "model folder (config.json, hf_quant_config.json) or id; default: the engine's model",
    "disk_cache": "keep the grid under ~/.cache/llmreplay/aic (default true)",
    "monotone": "fit AIC's tables to be non-decreasing in every argument (default true; false: AIC's raw values)",
    "mixed_step": "fused (default: one forward pass, as vLLM runs prefill chunks beside decodes) or sequential "
                  "(Dynamo's mocker: the prefill batch's time at its mean chunk plus the decode batch's)",
}


def build_aic(params: Mapping[str, Any], hw: HardwareSetup) -> AicModel:
    """Registry builder for ``perf_model: "aic"``."""
    _require_aic()
    disk = params.get("disk_cache", True)
    if not isinstance(disk, bool):
        raise InputError(f"perf_model (aic): field 'disk_cache' must be true or false (got {disk!r}).")
    monotone = params.get("monotone", True)
    if not isinstance(monotone, bool):
        raise InputError(f"perf_model (aic): field 'monotone' must be true or false (got {monotone!r}).")
    mixed = params.get("mixed_step", "fused")
    if mixed not in ("fused", "sequential"):
        raise InputError(f"perf_model (aic): field 'mixed_step' must be 'fused' or 'sequential' (got {mixed!r}).")
    target = resolve_target(params, hw)
    return AicModel(target, load_grid(target, use_disk_cache=disk), monotone=monotone, mixed_step=mixed)


def aic_perf_spec(perf_model: str | Mapping[str, Any], aic_backend: str | None,
                  aic_model_path: str | None) -> str | dict[str, Any]:
    """``perf_model`` with Dynamo's ``aic_backend`` and a folder ``aic_model_path`` filled in when it selects
    AIC (the registry builder sees only the hardware, which keeps neither). Other kinds pass through."""
    if isinstance(perf_model, str):
        if perf_model.strip().lower() != "aic":
            return perf_model
        spec: dict[str, Any] = {"kind": "aic"}
    else:
        kind = perf_model.get("kind")
        if not isinstance(kind, str) or kind.strip().lower() != "aic":
            return dict(perf_model)
        spec = dict(perf_model)
    if aic_backend and "backend" not in spec:
        spec["backend"] = aic_backend
    if aic_model_path and "model_path" not in spec and Path(aic_model_path).expanduser().exists():
        spec["model_path"] = aic_model_path
    return spec
