"""``llmreplay perf show``: the step-time surface of an engine's perf model, and the capacity the planner
would compute from it.

Before replaying a day of traffic it pays to look at the one function that sets every latency: how long a
step takes for a given batch. This command prints it (prefill over tokens × cached context, decode over
batch × context), draws it (``--html``), and turns it into what the planner decides with — requests/s one
engine sustains at an ISL/OSL within the ITL SLA — twice: straight from the perf model, and from the linear
regression the planner bootstraps from that model (``pre_deployment_sweeping_mode: rapid``), so a gap
between the two shows what the planner's linear fit loses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from llmreplay.cluster.pool import PoolSpec
from llmreplay.config import load_json_option
from llmreplay.engine.config import EngineArgs, parse_engine_args
from llmreplay.engine.perf.base import PerfModel
from llmreplay.engine.perf.hw import HardwareSetup, resolve_hardware
from llmreplay.engine.perf.registry import build_engine_perf_model
from llmreplay.errors import InputError
from llmreplay.planner import capacity as cap
from llmreplay.planner.bootstrap import bootstrap_agg, bootstrap_decode, bootstrap_prefill
from llmreplay.planner.regression import Regression, agg_regression, decode_regression, prefill_regression

PREFILL_TOKENS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
PREFILL_CONTEXTS = (0, 2048, 8192, 32768)
DECODE_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
DECODE_CONTEXTS = (512, 2048, 8192, 32768)


@dataclass
class Engine:
    """One engine as ``llmreplay run`` would build it (perf model, hardware, KV capacity)."""

    args: EngineArgs
    hw: HardwareSetup
    perf: PerfModel
    num_blocks: int

    @property
    def kv_tokens(self) -> int:
        return self.num_blocks * self.args.block_size

    def spec(self, name: str = "agg") -> PoolSpec:
        return PoolSpec(name, self.args, self.perf, self.num_blocks, self.hw.tp, self.args.block_size)

    # step times in seconds, after the engine's speedup_ratio (what the replay uses)
    def prefill_s(self, tokens: int, context: int) -> float:
        return self.perf.step_s([int(tokens)], [int(context)], 0, 0) / self.args.speedup_ratio

    def decode_s(self, batch: int, kv_tokens: int) -> float:
        return float(self.perf.decode_steps_s(int(batch), np.asarray([int(kv_tokens)], dtype=np.int64))[0]) \
            / self.args.speedup_ratio

    def mixed_s(self, prefill_tokens: int, context: int, batch: int, kv_tokens: int) -> float:
        return self.perf.step_s([int(prefill_tokens)], [int(context)], int(batch), int(kv_tokens)) \
            / self.args.speedup_ratio


def build_engine(raw_args: str | dict[str, Any] | None) -> Engine:
    """Engine args (inline JSON, a file, or a dict) → the engine, exactly as a run builds its workers."""
    args = parse_engine_args(load_json_option(raw_args, "--engine-args"), source="--engine-args")
    hw = resolve_hardware(args)
    perf = build_engine_perf_model(args, hw)
    blocks = args.num_gpu_blocks or hw.derive_num_gpu_blocks(args.block_size, args.gpu_memory_utilization,
                                                              args.max_num_batched_tokens)
    return Engine(args, hw, perf, blocks)


# ---- capacity -------------------------------------------------------------------------------------------
def direct_agg_step(engine: Engine, isl: float, osl: float) -> Callable[[float, float, float], float]:
    """``agg_step(prefill tokens, decode KV, prompt length)`` timed by the perf model itself: the decode batch
    is KV / (ISL + OSL/2) requests, and the prefill chunk attends to the mean context of a chunk of a prompt
    of that length, (prompt − chunk) / 2 — the same work the planner's regression feature P·prompt/2 counts."""
    ctx = max(isl + osl / 2, 1.0)

    def step(p: float, k: float, prompt: float) -> float:
        n = max(round(k / ctx), 0)
        p_int = max(round(p), 0)
        if p_int == 0:
            return engine.decode_s(n, int(k))
        return engine.mixed_s(p_int, int(max(prompt - p, 0.0) / 2), n, int(k))

    return step


@dataclass
class CapacityRow:
    role: str
    source: str  # "perf model" or "planner regression"
    rps: float
    batch: int
    step_ms: float
    meets_sla: bool
    note: str = ""


def capacities(engine: Engine, isl: float, osl: float, itl_s: float, ttft_s: float,
               granularity: int = 8) -> list[CapacityRow]:
    """Prefill, decode and agg engine capacity at (ISL, OSL) within the SLA, from the perf model and from the
    planner's bootstrapped regressions (no prefix-cache hits assumed)."""
    a = engine.args
    mbt, kv, seqs = a.max_num_batched_tokens, engine.kv_tokens, a.max_num_seqs
    rows: list[CapacityRow] = []

    def add(role: str, source: str, c: cap.Capacity, limit_s: float, note: str = "") -> None:
        rows.append(CapacityRow(role, source, c.rps, c.batch, c.step_s * 1e3, c.step_s <= limit_s, note))

    add("prefill", "perf model", cap.prefill_capacity(isl, mbt, lambda t, c: engine.prefill_s(int(t), int(c))),
        ttft_s, "step = time to prefill one prompt (TTFT floor)")
    add("decode", "perf model", cap.decode_capacity(itl_s, isl, osl, kv, seqs,
                                                    lambda n, k: engine.decode_s(int(n), int(k))), itl_s)
    add("agg", "perf model", cap.agg_capacity(itl_s, isl, osl, mbt, kv, seqs, direct_agg_step(engine, isl, osl)),
        itl_s)
    for role, reg in fitted_regressions(engine, granularity).items():
        if not reg.ready:
            rows.append(CapacityRow(role, "planner regression", math.nan, 0, math.nan, False,
                                    "fit rejected (negative coefficient)"))
            continue
        if role == "prefill":
            add(role, "planner regression", cap.prefill_capacity(isl, mbt, _prefill_fit(reg)), ttft_s)
        elif role == "decode":
            add(role, "planner regression", cap.decode_capacity(itl_s, isl, osl, kv, seqs, _decode_fit(reg)), itl_s)
        else:
            add(role, "planner regression", cap.agg_capacity(itl_s, isl, osl, mbt, kv, seqs, agg_fit(reg)), itl_s)
    return rows


def _prefill_fit(reg: Regression) -> Callable[[float, float], float]:
    """The planner's prefill step: ``tokens`` new after ``ctx`` cached (attention work tokens·(ctx + tokens/2))."""
    return lambda t, ctx: reg.predict(t, t * (ctx + t / 2))


def _decode_fit(reg: Regression) -> Callable[[float, float], float]:
    return lambda n, k: reg.predict(n, k)


def agg_fit(reg: Regression) -> Callable[[float, float, float], float]:
    """The planner's agg step (``planner.Planner._engine_capacity``): features (P, KV, P·prompt/2)."""
    return lambda p, k, prompt: reg.predict(p, k, p * prompt / 2)


def fitted_regressions(engine: Engine, granularity: int = 8) -> dict[str, Regression]:
    """The three regressions as the planner bootstraps them from this engine (``rapid`` mode)."""
    out = {"prefill": prefill_regression(), "decode": decode_regression(), "agg": agg_regression()}
    bootstrap_prefill(out["prefill"], engine.spec("prefill"), granularity)
    bootstrap_decode(out["decode"], engine.spec("decode"), granularity)
    bootstrap_agg(out["agg"], engine.spec("agg"), granularity)
    return out


# ---- surface --------------------------------------------------------------------------------------------
@dataclass
class Surface:
    prefill_tokens: list[int]
    prefill_contexts: list[int]
    prefill_ms: list[list[float]]  # [context][tokens]
    decode_batches: list[int]
    decode_contexts: list[int]
    decode_ms: list[list[float]]  # [context][batch]
    kv_tokens: int


def surface(engine: Engine, tokens: list[int] | None = None, contexts: list[int] | None = None,
            batches: list[int] | None = None, decode_contexts: list[int] | None = None) -> Surface:
    a = engine.args
    tokens = tokens or sorted({t for t in PREFILL_TOKENS if t <= a.max_num_batched_tokens}
                              | {a.max_num_batched_tokens})
    contexts = contexts or list(PREFILL_CONTEXTS)
    batches = batches or sorted({b for b in DECODE_BATCHES if b <= a.max_num_seqs} | {a.max_num_seqs})
    decode_contexts = decode_contexts or list(DECODE_CONTEXTS)
    pre = [[engine.prefill_s(t, c) * 1e3 for t in tokens] for c in contexts]
    dec = [[engine.decode_s(b, b * c) * 1e3 for b in batches] for c in decode_contexts]
    return Surface(tokens, contexts, pre, batches, decode_contexts, dec, engine.kv_tokens)


# ---- output ---------------------------------------------------------------------------------------------
def _fmt_ms(v: float) -> str:
    return f"{v:,.2f}" if v < 100 else f"{v:,.0f}"


def render(engine: Engine, surf: Surface, caps: list[CapacityRow], isl: float, osl: float, itl_ms: float,
           ttft_ms: float, console: Console) -> None:
    a = engine.args
    console.print(f"[bold]perf model[/]: {engine.perf.describe()}", highlight=False)
    console.print(f"[bold]hardware[/]: {engine.hw.describe()}", highlight=False)
    console.print(f"[bold]KV cache[/]: {engine.num_blocks:,} blocks × {a.block_size} = {engine.kv_tokens:,} tokens; "
                  f"max_num_batched_tokens {a.max_num_batched_tokens:,}, max_num_seqs {a.max_num_seqs}"
                  + (f", speedup_ratio {a.speedup_ratio:g}" if a.speedup_ratio != 1 else ""), highlight=False)
    t = Table(title="Prefill step (ms): one chunk of N new tokens after C cached tokens", title_justify="left")
    t.add_column("C \\ N", justify="right")
    for n in surf.prefill_tokens:
        t.add_column(f"{n:,}", justify="right")
    for c, row in zip(surf.prefill_contexts, surf.prefill_ms, strict=True):
        t.add_row(f"{c:,}", *[_fmt_ms(v) for v in row])
    console.print(t)
    t = Table(title="Decode step (ms): B requests with C tokens of context each (dim: B × C above the KV cache)",
              title_justify="left")
    t.add_column("C \\ B", justify="right")
    for b in surf.decode_batches:
        t.add_column(f"{b:,}", justify="right")
    for c, row in zip(surf.decode_contexts, surf.decode_ms, strict=True):
        cells = [(_fmt_ms(v) if b * c <= surf.kv_tokens else f"[dim]{_fmt_ms(v)}[/]")
                 for b, v in zip(surf.decode_batches, row, strict=True)]
        t.add_row(f"{c:,}", *cells)
    console.print(t)
    t = Table(title=f"Engine capacity at ISL {isl:,.0f}, OSL {osl:,.0f}, ITL SLA {itl_ms:g} ms "
                    f"(prefill: TTFT SLA {ttft_ms:g} ms)", title_justify="left")
    for col, just in (("role", "left"), ("from", "left"), ("req/s", "right"), ("batch", "right"),
                      ("step ms", "right"), ("within SLA", "left"), ("", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in caps:
        rps = "—" if math.isnan(r.rps) else f"{r.rps:,.3f}"
        step = "—" if math.isnan(r.step_ms) else _fmt_ms(r.step_ms)
        t.add_row(r.role, r.source, rps, str(r.batch) if r.batch else "—", step, "yes" if r.meets_sla else "no",
                  r.note)
    console.print(t)


def write_html(path: Path, engine: Engine, caps: list[CapacityRow], isl: float, osl: float, itl_ms: float,
               plotlyjs: str) -> Path:
    """Self-contained page: prefill and decode step-time surfaces (heatmaps over log axes), their cuts, and the
    agg capacity curve the planner's binary search walks."""
    from plotly.subplots import make_subplots

    a = engine.args
    tokens = sorted({int(x) for x in np.geomspace(16, a.max_num_batched_tokens, 28)} | {a.max_num_batched_tokens})
    contexts = [0] + [int(x) for x in np.geomspace(256, 131072, 19)]
    batches = sorted({int(x) for x in np.geomspace(1, a.max_num_seqs, 28)})
    dctx = [int(x) for x in np.geomspace(128, 131072, 21)]
    s = surface(engine, tokens, contexts, batches, dctx)
    fig = make_subplots(rows=3, cols=2, vertical_spacing=0.09, horizontal_spacing=0.1, subplot_titles=(
        "Prefill step (ms): new tokens × cached context", "Decode step (ms): batch × context per request",
        "Prefill step (ms) vs new tokens", "Decode step (ms) vs batch",
        f"Agg step at x decodes + admitted prefill (ISL {isl:,.0f}, OSL {osl:,.0f})", "Agg engine req/s at batch x"))
    # colour on a log scale: step times span three decades, a linear scale would show one corner only
    for col, x, y, z, label in ((1, s.prefill_tokens, [max(c, 1) for c in s.prefill_contexts], s.prefill_ms,
                                 "N %{x}, C %{y}"),
                                (2, s.decode_batches, s.decode_contexts, s.decode_ms, "B %{x}, C %{y}")):
        zs = np.asarray(z, dtype=np.float64)
        ticks = [v for v in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
                 if zs.min() <= v <= zs.max()]
        fig.add_heatmap(x=x, y=y, z=np.log10(zs).tolist(), customdata=zs.tolist(), row=1, col=col,
                        colorscale="Viridis", hovertemplate=label + ": %{customdata:.2f} ms<extra></extra>",
                        colorbar={"x": 0.45 if col == 1 else 1.0, "y": 0.84, "len": 0.3, "title": "ms",
                                  "tickvals": np.log10(ticks).tolist(), "ticktext": [f"{v:g}" for v in ticks]})
    for c in PREFILL_CONTEXTS:
        fig.add_scatter(x=s.prefill_tokens, y=[engine.prefill_s(t, c) * 1e3 for t in s.prefill_tokens], row=2,
                        col=1, mode="lines", name=f"prefill, context {c:,}", legendgroup="p")
    for c in DECODE_CONTEXTS:
        fig.add_scatter(x=s.decode_batches, y=[engine.decode_s(b, b * c) * 1e3 for b in s.decode_batches], row=2,
                        col=2, mode="lines", name=f"decode, context {c:,}", legendgroup="d")
    hi = max(1, min(int(engine.kv_tokens // max(isl + osl, 1)), a.max_num_seqs, a.max_num_batched_tokens - 1))
    xs = sorted({int(x) for x in np.geomspace(1, hi, 40)} | {hi})
    direct = direct_agg_step(engine, isl, osl)
    reg = fitted_regressions(engine)["agg"]
    ctx = isl + osl / 2

    def agg_t(step: Callable[[float, float, float], float], x: int) -> float:
        p = min(a.max_num_batched_tokens - x, math.ceil(x * isl / max(osl, 1)))
        return step(p, x * ctx, isl)

    curves: list[tuple[str, Callable[[float, float, float], float]]] = [("perf model", direct)]
    if reg.ready:
        curves.append(("planner regression", agg_fit(reg)))
    for name, fn in curves:
        ts = [agg_t(fn, x) * 1e3 for x in xs]
        fig.add_scatter(x=xs, y=ts, row=3, col=1, mode="lines", name=f"agg step, {name}", legendgroup="a")
        fig.add_scatter(x=xs, y=[x / (osl * t / 1e3) for x, t in zip(xs, ts, strict=True)], row=3, col=2,
                        mode="lines", name=f"agg req/s, {name}", legendgroup="r")
    fig.add_hline(y=itl_ms, row=3, col=1, line={"dash": "dot", "color": "red"},
                  annotation_text=f"ITL SLA {itl_ms:g} ms")
    for r, c in ((1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)):
        fig.update_xaxes(type="log", row=r, col=c)
    for r, c in ((1, 1), (1, 2), (2, 1), (2, 2)):
        fig.update_yaxes(type="log", row=r, col=c)
    fig.update_xaxes(title_text="new tokens N", row=1, col=1)
    fig.update_yaxes(title_text="cached context C (0 shown at 1)", row=1, col=1)
    fig.update_xaxes(title_text="batch B", row=1, col=2)
    fig.update_yaxes(title_text="context per request C", row=1, col=2)
    fig.update_xaxes(title_text="new tokens", row=2, col=1)
    fig.update_xaxes(title_text="batch", row=2, col=2)
    fig.update_xaxes(title_text="decode batch x", row=3, col=1)
    fig.update_xaxes(title_text="decode batch x", row=3, col=2)
    fig.update_layout(title=f"{engine.perf.describe()}<br><sup>{engine.hw.describe()} · KV {engine.kv_tokens:,} "
                            f"tokens · MBT {a.max_num_batched_tokens:,} · max_num_seqs {a.max_num_seqs}</sup>",
                      height=1300, template="plotly_white", legend={"orientation": "h", "y": -0.05})
    if plotlyjs not in ("inline", "cdn"):
        raise InputError(f"--plotlyjs must be 'inline' (works offline) or 'cdn' (smaller file), not {plotlyjs!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True if plotlyjs == "inline" else "cdn")
    return path


def execute_perf_show(engine_args: str | None, isl: float, osl: float, itl_ms: float, ttft_ms: float,
                      html: Path | None, plotlyjs: str, as_json: bool, granularity: int, console: Console) -> None:
    for name, v in (("--isl", isl), ("--osl", osl), ("--itl", itl_ms), ("--ttft", ttft_ms)):
        if not (math.isfinite(v) and v > 0):
            raise InputError(f"{name} must be > 0 (got {v:g}).")
    if granularity < 2:
        raise InputError(f"--granularity must be >= 2 (got {granularity}).")
    engine = build_engine(engine_args)
    surf = surface(engine)
    caps = capacities(engine, isl, osl, itl_ms / 1e3, ttft_ms / 1e3, granularity)
    if as_json:
        console.print_json(json.dumps({
            "perf_model": engine.perf.describe(), "hardware": engine.hw.describe(), "kv_tokens": engine.kv_tokens,
            "num_gpu_blocks": engine.num_blocks, "surface": asdict(surf),
            "sla": {"isl": isl, "osl": osl, "itl_ms": itl_ms, "ttft_ms": ttft_ms},
            "capacity": [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()}
                         for r in caps],
        }))
    else:
        render(engine, surf, caps, isl, osl, itl_ms, ttft_ms, console)
    if html is not None:
        path = write_html(html, engine, caps, isl, osl, itl_ms, plotlyjs)
        if not as_json:
            console.print(f"HTML: {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False)
