"""Perf models: the wall time of one engine step, and the hardware/model specs they are built from.

- :mod:`.base` — the :class:`PerfModel` interface the engine calls;
- :mod:`.hardware`, :mod:`.models` — GPU and model specs (each cited), looked up by name;
- :mod:`.hw` — :class:`HardwareSetup` (GPU × model × TP × KV dtype) and the derived KV capacity;
- :mod:`.roofline`, :mod:`.polynomial`, :mod:`.constant` — the implementations;
- :mod:`.registry` — ``perf_model`` engine arg → a model.
"""

from llmreplay.engine.perf.base import PerfModel, to_ns
from llmreplay.engine.perf.constant import ConstantModel
from llmreplay.engine.perf.hardware import GPUS, GPUSpec, get_gpu
from llmreplay.engine.perf.hw import HardwareSetup, resolve_hardware
from llmreplay.engine.perf.models import MODELS, ModelSpec, get_model, load_hf_config
from llmreplay.engine.perf.polynomial import PolynomialModel
from llmreplay.engine.perf.registry import PERF_KINDS, PerfKind, build_perf_model
from llmreplay.engine.perf.roofline import RooflineModel, RooflineParams

__all__ = [
    "GPUS",
    "MODELS",
    "PERF_KINDS",
    "ConstantModel",
    "GPUSpec",
    "HardwareSetup",
    "ModelSpec",
    "PerfKind",
    "PerfModel",
    "PolynomialModel",
    "RooflineModel",
    "RooflineParams",
    "build_perf_model",
    "get_gpu",
    "get_model",
    "load_hf_config",
    "resolve_hardware",
    "to_ns",
]
