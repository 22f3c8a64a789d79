"""GPU prices per hour: one table of on-demand list prices, each with its source and the date it was read.

``--gpu-prices FILE`` (YAML/JSON: ``{gpu: usd_per_hour}`` or ``{gpu: {usd_per_hour: x, source: ..., date:
...}}``) overrides any entry, e.g. with a negotiated or reserved rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmreplay.config import read_mapping_file
from llmreplay.engine.perf.hardware import GPUS
from llmreplay.errors import InputError

_COREWEAVE = "CoreWeave on-demand list price (coreweave.com/pricing), 8-GPU instance price / 8"


@dataclass(frozen=True)
class GpuPrice:
    gpu: str
    usd_per_hour: float
    source: str
    date: str


#: USD per GPU-hour. One provider for every GPU, so ratios between GPUs are consistent.
GPU_PRICES: dict[str, GpuPrice] = {
    "a100_sxm": GpuPrice("a100_sxm", 21.60 / 8, f"{_COREWEAVE} (HGX A100 80GB, $21.60/h)", "2026-02"),
    "h100_sxm": GpuPrice("h100_sxm", 49.24 / 8, f"{_COREWEAVE} (HGX H100, $49.24/h)", "2026-02"),
    "h200_sxm": GpuPrice("h200_sxm", 50.44 / 8, f"{_COREWEAVE} (HGX H200, $50.44/h)", "2026-02"),
    "b200_sxm": GpuPrice("b200_sxm", 68.80 / 8, f"{_COREWEAVE} (HGX B200, $68.80/h)", "2026-02"),
    "l40s": GpuPrice("l40s", 18.00 / 8, f"{_COREWEAVE} (L40S, $18.00/h)", "2026-02"),
}


def load_gpu_prices(path: Path | None) -> dict[str, GpuPrice]:
    """The default table, with the entries of ``path`` (if given) replacing or adding GPUs."""
    prices = dict(GPU_PRICES)
    if path is None:
        return prices
    if not path.is_file():
        raise InputError(f"--gpu-prices: {path}: no such file.")
    raw = read_mapping_file(path, "--gpu-prices")
    for key, value in raw.items():
        gpu = str(key).strip().lower().replace("-", "_")
        where = f"--gpu-prices {path}: entry '{key}'"
        if gpu not in GPUS:
            raise InputError(f"{where}: unknown GPU; known: {', '.join(sorted(GPUS))}.")
        source, date = f"--gpu-prices {path}", ""
        if isinstance(value, dict):
            unknown = set(value) - {"usd_per_hour", "source", "date"}
            if unknown or "usd_per_hour" not in value:
                raise InputError(f"{where}: give usd_per_hour (and optionally source, date); got keys "
                                 f"{', '.join(map(str, value))}.")
            source = str(value.get("source", source))
            date = str(value.get("date", ""))
            value = value["usd_per_hour"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InputError(f"{where}: the price must be a positive number of USD per GPU-hour (got {value!r}).")
        prices[gpu] = GpuPrice(gpu, float(value), source, date)
    return prices


def price_of(prices: dict[str, GpuPrice], gpu: str) -> GpuPrice:
    p = prices.get(gpu)
    if p is None:
        raise InputError(f"no price for GPU '{gpu}'; add it with --gpu-prices FILE ({gpu}: USD per GPU-hour).")
    return p
