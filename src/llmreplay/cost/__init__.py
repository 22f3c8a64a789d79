"""What a run costs: dollars (:mod:`.prices`, a GPU price table) and energy (:mod:`.power`, a per-step power
model driven by the roofline work of each step's shape, whatever perf model timed it)."""

from llmreplay.cost.power import GPU_POWER, GpuPower, StepPower, energy_summary, get_power, step_power
from llmreplay.cost.prices import GPU_PRICES, GpuPrice, load_gpu_prices

__all__ = ["GPU_POWER", "GPU_PRICES", "GpuPower", "GpuPrice", "StepPower", "energy_summary", "get_power",
           "load_gpu_prices", "step_power"]
