"""Traces: load recorded request traces into columnar arrays, slice them, synthesise new ones."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from llmreplay.trace.loaders import FORMATS, detect_format, load_trace
from llmreplay.trace.model import Trace
from llmreplay.trace.stats import render_trace_stats, trace_stats
from llmreplay.trace.synth import parse_dist, write_trace
from llmreplay.trace.transform import jitter_arrivals, parse_jitter, slice_trace, speed_up

DEMO_TRACE = "demo_mooncake_conversation.jsonl"


def demo_trace_path() -> Path:
    """The bundled demo trace: the first 5 minutes (918 requests) of Mooncake's FAST'25 conversation trace."""
    resource = files("llmreplay").joinpath("data", DEMO_TRACE)
    if isinstance(resource, Path):
        return resource
    with as_file(resource) as p:  # pragma: no cover - only for zipped installs
        return Path(p)


__all__ = [
    "DEMO_TRACE",
    "FORMATS",
    "Trace",
    "demo_trace_path",
    "detect_format",
    "jitter_arrivals",
    "load_trace",
    "parse_dist",
    "parse_jitter",
    "render_trace_stats",
    "slice_trace",
    "speed_up",
    "trace_stats",
    "write_trace",
]
