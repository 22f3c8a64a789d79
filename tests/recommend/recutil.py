"""A small recommend problem: ~300 bursty requests over 2 minutes, steps slowed 6.7× (speedup_ratio 0.15) so
that one to four workers span failing to meeting the SLA, and each replay takes a fraction of a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmreplay.trace.synth import bursty, write_trace

ENGINE: dict[str, Any] = {"gpu": "h100_sxm", "speedup_ratio": 0.15}
SLA = {"sla_ttft_ms": 1500.0, "sla_itl_ms": 100.0}
GOAL = 0.75
#: 2 GPUs × 2 weights × (agg 1..4 + disagg 1..2 × 1..2) = 32 deployments; a 30 s screening window
SPACE: dict[str, Any] = {
    "gpus": ["h100_sxm", "h200_sxm"],
    "weights": ["bf16", "fp8"],
    "routers": ["round_robin"],
    "agg": {"workers": "1..4"},
    "disagg": {"prefill": [1, 2], "decode": [1, 2]},
    "screen_s": 30,
}


def write_small_trace(folder: Path) -> Path:
    path = folder / "bursty.jsonl"
    write_trace(bursty(2.5, duration_s=120, cv=3.0, isl_dist="lognormal:7.5,0.8", osl_dist="uniform:30,150",
                       seed=7), path)
    return path


def write_space(folder: Path) -> Path:
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(SPACE))
    return path
