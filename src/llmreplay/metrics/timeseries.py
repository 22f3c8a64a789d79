"""Per-interval series for the report: traffic, latency, SLA attainment, workers, KV use and queues.

Bins are equal slices of [0, horizon], at most ``MAX_BINS`` of them, so a report stays small however long
the run, and never narrower than the trace's arrival quantum (a trace whose timestamps step by 3 s binned at 1 s
would show a comb of empty intervals). Per-worker series keep each bin's maximum (spikes survive downsampling).
Per-interval counts (``arrivals``, ``latency_requests``, ``itl_requests``, ``sla_population``) ride along so the
page can merge intervals (its interval control) with the right weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from llmreplay.cluster.pool import Pool
from llmreplay.metrics import definitions as d
from llmreplay.metrics.definitions import SlaJudgement
from llmreplay.metrics.quantiles import grouped_percentile, percentiles
from llmreplay.metrics.records import RequestRecords, Status
from llmreplay.units import NS_PER_S

MAX_BINS = 400
NICE_STEPS_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
F64 = npt.NDArray[np.float64]


#: multiples of the arrival quantum an interval may span
QUANTUM_MULTIPLES = (1, 2, 4, 5, 10, 20, 40, 50, 100, 200, 500, 1000)
#: timestamp steps below this count as continuous arrivals
MIN_QUANTUM_NS = 1_000_000


def arrival_quantum_s(arrival_ns: npt.NDArray[np.int64]) -> float:
    """The step arrival times come in, e.g. 3.0 for the Mooncake conversation trace (timestamps 0, 3000, 5999,
    9000 ms: 3 s steps with 1 ms of rounding noise); 0.0 when arrivals are continuous. The step is the typical
    smallest gap between distinct arrival times (rounded to the ms), accepted when every gap is a whole number
    of steps within 2 ms or 1 %."""
    t = np.sort(arrival_ns[arrival_ns >= 0])
    t = t[np.concatenate(([True], t[1:] != t[:-1]))]  # the distinct times (np.unique, without importing numpy.ma)
    if t.size < 3:
        return 0.0
    gaps = np.diff(t)
    small = gaps[gaps < 1.5 * gaps.min()]
    q = round(float(np.median(small)) / MIN_QUANTUM_NS) * MIN_QUANTUM_NS
    if q < MIN_QUANTUM_NS:
        return 0.0
    k = np.round(gaps / q)
    ok = (k >= 1) & (np.abs(gaps - k * q) <= np.maximum(2 * MIN_QUANTUM_NS, 0.01 * q))
    return q / d.NS_PER_S if ok.all() else 0.0


def bin_width_s(horizon_s: float, quantum_s: float = 0.0) -> float:
    """The interval width: the narrowest "nice" step (or, for a quantised trace, multiple of its quantum) that
    keeps the series within ``MAX_BINS`` intervals."""
    if quantum_s > 0:
        for k in QUANTUM_MULTIPLES:
            if horizon_s / (k * quantum_s) <= MAX_BINS:
                return k * quantum_s
    for step in NICE_STEPS_S:
        if step >= quantum_s and horizon_s / step <= MAX_BINS:
            return float(step)
    return float(math.ceil(horizon_s / MAX_BINS / 3600) * 3600)


def _nan_to_none(a: F64) -> list[float | None]:
    return [None if not math.isfinite(x) else round(float(x), 6) for x in a]


def _binned_mean(idx: npt.NDArray[np.int64], values: F64, n: int) -> F64:
    s = np.bincount(idx, weights=values, minlength=n)[:n]
    c = np.bincount(idx, minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def _integral_per_bin(log: list[tuple[int, int]], wns: int, n: int, horizon_ns: int, off: int = 0) -> list[float]:
    """Exact integral (value × seconds) of a step function (time, value) over each bin, up to the horizon."""
    out = np.zeros(n)
    for k, (t, v) in enumerate(log):
        t_end = log[k + 1][0] if k + 1 < len(log) else horizon_ns
        a, b = max(t, 0), min(t_end, horizon_ns, n * wns - off)
        while a < b and v:
            i = min((a + off) // wns, n - 1)
            edge = min(b, (i + 1) * wns - off)
            out[i] += v * (edge - a) / NS_PER_S
            a = edge
    return [round(float(x), 6) for x in out]


def _binned_p90(idx: npt.NDArray[np.int64], values: F64, n: int) -> list[float | None]:
    return [None if x is None else round(x, 6) for x in grouped_percentile(idx, values, n, 90)]


def _active_per_bin(rec: RequestRecords, wns: int, n: int, off: int = 0) -> npt.NDArray[np.int64]:
    """Requests in flight at some time in each bin: sent before the bin ends and not finished before it starts
    (a request still running at the end counts to the last bin)."""
    sent = rec.arrival_ns >= 0
    start = np.minimum((rec.arrival_ns[sent] + off) // wns, n - 1)
    fin = rec.finish_ns[sent]
    end = np.where(fin >= 0, np.minimum((fin + off) // wns, n - 1), n - 1)
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, start, 1)
    np.add.at(delta, end + 1, -1)
    return np.cumsum(delta)[:n]


def _step_series(log: list[tuple[int, int]], edges_ns: npt.NDArray[np.int64]) -> list[int]:
    """Value of a step function (time, value) at each bin end."""
    if not log:
        return [0] * len(edges_ns)
    times = np.asarray([t for t, _ in log], dtype=np.int64)
    vals = np.asarray([v for _, v in log], dtype=np.int64)
    pos = np.searchsorted(times, edges_ns, side="right") - 1
    return [int(vals[p]) if p >= 0 else 0 for p in pos]


def build_timeseries(
    rec: RequestRecords,
    pools: dict[str, Pool],
    horizon_ns: int,
    judgement: SlaJudgement | None,
    warmup_ns: int = 0,
) -> dict[str, Any]:
    horizon_s = max(horizon_ns / d.NS_PER_S, 1e-9)
    quantum = arrival_quantum_s(rec.trace_arrival_ns)
    width = bin_width_s(horizon_s, quantum)
    wns = round(width * d.NS_PER_S)
    # a quantised trace's intervals are centred on its arrival steps (edges half a step early), so arrivals a
    # millisecond before their step (5,999 ms for 6 s) fall in the same interval as those on it
    off = round(quantum * d.NS_PER_S / 2)
    n = max(1, -(-(horizon_ns + off) // wns))
    edges_end = np.arange(1, n + 1, dtype=np.int64) * wns - off
    sent = rec.arrival_ns >= 0
    done = rec.status == Status.COMPLETED

    def bins(times: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        return np.minimum((times + off) // wns, n - 1).astype(np.int64)

    arr_bin = bins(rec.arrival_ns[sent])
    fin_bin = bins(rec.finish_ns[done])
    # latency by completion interval, from the metric definitions (warm-up requests left out, as in the summary)
    ttft = d.record_values(d.TTFT, rec, warmup_ns)[done]
    itl = d.record_values(d.ITL, rec, warmup_ns)[done]
    has_itl = np.isfinite(itl)
    has_ttft = np.isfinite(ttft)
    itl_bins = fin_bin[has_itl]
    admitted = rec.cached_tokens >= 0
    adm_bin = bins(np.where(sent, rec.arrival_ns, 0)[admitted])
    cached = np.bincount(adm_bin, weights=rec.cached_tokens[admitted], minlength=n)[:n]
    prompt = np.bincount(adm_bin, weights=rec.isl[admitted], minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        hit = np.where(prompt > 0, cached / np.maximum(prompt, 1), np.nan)

    out: dict[str, Any] = {
        "bin_s": width,
        "arrival_quantum_s": quantum,
        "t_s": [round((i * wns - off) / d.NS_PER_S, 6) for i in range(n)],
        "arrivals": np.bincount(arr_bin, minlength=n)[:n].tolist(),
        "completions": np.bincount(fin_bin, minlength=n)[:n].tolist(),
        "arrival_rps": (np.bincount(arr_bin, minlength=n)[:n] / width).round(6).tolist(),
        "ttft_ms_avg": _nan_to_none(_binned_mean(fin_bin[has_ttft], ttft[has_ttft], n)),
        "ttft_ms_p90": _binned_p90(fin_bin[has_ttft], ttft[has_ttft], n),
        "itl_ms_avg": _nan_to_none(_binned_mean(itl_bins, itl[has_itl], n)),
        "itl_ms_p90": _binned_p90(itl_bins, itl[has_itl], n),
        "isl_avg": _nan_to_none(_binned_mean(arr_bin, rec.isl[sent].astype(np.float64), n)),
        "osl_avg": _nan_to_none(_binned_mean(arr_bin, rec.osl[sent].astype(np.float64), n)),
        "prefix_cache_hit_rate": _nan_to_none(hit),
        "sla_attainment": None,
        # weights for merging intervals: requests behind each per-interval average
        "latency_requests": np.bincount(fin_bin[has_ttft], minlength=n)[:n].tolist(),
        "itl_requests": np.bincount(itl_bins, minlength=n)[:n].tolist(),
        "prompt_tokens": prompt.astype(np.int64).tolist(),
        "sla_population": None,
        "active_requests": _active_per_bin(rec, wns, n, off).tolist(),
    }
    if judgement is not None:
        # attainment by arrival interval: of the bin's requests in the attainment population, the share that met
        # the SLA (warm-up intervals have none: a gap)
        pop = judgement.population[sent]
        out["sla_population"] = np.bincount(arr_bin[pop], minlength=n)[:n].tolist()
        out["sla_attainment"] = _nan_to_none(_binned_mean(arr_bin[pop], judgement.good[sent][pop].astype(np.float64),
                                                          n))
    pools_out: dict[str, Any] = {}
    for name, pool in pools.items():
        cap = pool.spec.num_blocks
        workers: list[dict[str, Any]] = []
        for w in pool.workers:
            f = w.engine.fpm.to_arrays()
            if len(f["t_end_ns"]):
                b = bins(f["t_end_ns"])
                kv = np.full(n, np.nan)
                np.fmax.at(kv, b, f["kv_used_blocks"] / cap)
                queue = np.full(n, np.nan)
                np.fmax.at(queue, b, f["queued_prefill_tokens"].astype(np.float64))
                waiting = np.full(n, np.nan)
                np.fmax.at(waiting, b, f["num_waiting"].astype(np.float64))
                kv_tok = np.full(n, np.nan)
                # "total KV" = in flight + queued, in tokens: what the decode side must hold
                np.fmax.at(kv_tok, b, (f["kv_used_blocks"] * pool.spec.args.block_size
                                       + f["queued_prefill_tokens"]).astype(np.float64))
                busy = np.bincount(b, weights=(f["t_end_ns"] - f["t_start_ns"]).astype(np.float64),
                                   minlength=n)[:n] / wns
            else:
                kv = queue = waiting = kv_tok = busy = np.full(n, np.nan)
            workers.append({
                "id": w.id,
                "started_s": round(w.created_ns / NS_PER_S, 6),
                "stopped_s": round(w.stopped_ns / NS_PER_S, 6) if w.stopped_ns >= 0 else None,
                "kv_used_fraction_max": _nan_to_none(kv),
                "queued_prefill_tokens_max": _nan_to_none(queue),
                "waiting_max": _nan_to_none(waiting),
                "total_kv_tokens_max": _nan_to_none(kv_tok),
                "busy_fraction": _nan_to_none(np.minimum(busy, 1.0)),
            })
        pools_out[name] = {
            "kv_capacity_tokens": cap * pool.spec.args.block_size,
            "active_workers": _step_series(pool.active_log, edges_end),
            "provisioned_workers": _step_series(pool.provision_log, edges_end),
            "gpus": [v * pool.spec.gpus_per_worker for v in _step_series(pool.provision_log, edges_end)],
            # exact GPU-seconds provisioned in each interval: their running sum ends at cost.gpu_hours
            "gpu_seconds": [x * pool.spec.gpus_per_worker
                            for x in _integral_per_bin(pool.provision_log, wns, n, horizon_ns, off)],
            "workers": workers,
        }
    out["pools"] = pools_out
    out["cdf"] = latency_cdf(rec, warmup_ns)
    return out


CDF_POINTS = 101


def latency_cdf(rec: RequestRecords, warmup_ns: int = 0) -> dict[str, Any]:
    """Quantiles 0, 1, ..., 100 % of TTFT, per-request ITL and request latency (ms) of the measured requests (the
    same values as the summary's statistics), enough to draw the CDFs without keeping every request."""
    q = np.linspace(0, 100, CDF_POINTS)

    def quant(metric: d.MetricDef) -> list[float] | None:
        v = d.record_values(metric, rec, warmup_ns)
        v = v[np.isfinite(v)]
        return [round(x, 4) for x in percentiles(v, q).tolist()] if v.size else None

    return {"percent": q.tolist(), "ttft_ms": quant(d.TTFT), "itl_ms": quant(d.ITL),
            "request_latency_ms": quant(d.REQUEST_LATENCY)}
