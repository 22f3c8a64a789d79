"""Perf-model guards: a step time that is not finite, not positive or absurdly long stops the run with exit 2
naming the model and the step, instead of wrapping around int64 ns into a 0 ms step."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from llmreplay.engine.perf.base import (
    F64,
    I64,
    MAX_STEP_S,
    MIN_SPEEDUP_RATIO,
    PerfModel,
    StepTimeError,
    seconds_to_ns,
    to_ns,
)
from llmreplay.engine.perf.table import load_measured_points
from llmreplay.errors import InputError
from llmreplay.trace import demo_trace_path


class Returns(PerfModel):
    """A perf model that returns whatever it is told: the guard, not the model, must catch it."""

    kind = "returns"

    def __init__(self, value: float) -> None:
        self.value = value

    def step_s(self, prefill_new: Sequence[int], prefill_ctx: Sequence[int], n_decode: int,
               decode_kv_tokens: int) -> float:
        return self.value

    def decode_steps_s(self, n_decode: int, decode_kv_tokens: I64) -> F64:
        out = np.full(decode_kv_tokens.shape[0], 0.01)
        out[-1:] = self.value
        return out


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 0.0, -1e-3, MAX_STEP_S * 2, 1e297])
def test_every_bad_step_time_is_an_input_error_naming_model_and_step(value: float) -> None:
    m = Returns(value)
    with pytest.raises(StepTimeError, match=r"^perf model returns: a step of prefill chunks \[512 new \+ 64 cached\] "
                                            r"with 3 decode requests reading 900 KV tokens takes"):
        m.step_s([512, 0], [64, 0], 3, 900)
    with pytest.raises(StepTimeError, match=r"3 decode requests reading 77 KV tokens \(a decode-only step\)"):
        m.decode_steps_s(3, np.asarray([10, 20, 77], dtype=np.int64))
    assert isinstance(StepTimeError("x"), InputError)  # exit 2 through the CLI's one boundary


def test_good_step_times_pass_through_unchanged() -> None:
    m = Returns(0.25)
    assert m.step_s([1], [0], 0, 0) == 0.25
    np.testing.assert_array_equal(m.decode_steps_s(1, np.asarray([1, 2])), [0.01, 0.25])
    assert m.decode_steps_s(1, np.zeros(0, dtype=np.int64)).shape == (0,)


def test_speedup_ratio_below_the_representable_range_is_an_error() -> None:
    assert to_ns(np.asarray([MAX_STEP_S]), MIN_SPEEDUP_RATIO)[0] < 2**63 - 1
    with pytest.raises(InputError, match="speedup_ratio 1e-300"):
        to_ns(np.asarray([0.01]), 1e-300)
    assert seconds_to_ns(MAX_STEP_S, MIN_SPEEDUP_RATIO) == int(to_ns(np.asarray([MAX_STEP_S]), MIN_SPEEDUP_RATIO)[0])
    with pytest.raises(InputError, match="speedup_ratio 1e-300"):
        seconds_to_ns(0.01, 1e-300)


def test_table_rows_beyond_a_day_or_not_utf8_are_rejected(tmp_path: Path) -> None:
    p = tmp_path / "steps.csv"
    p.write_text("prefill_tokens,decode_requests,decode_kv_tokens,step_ms\n100,0,0,5\n200,0,0,1e300\n"
                 "0,1,100,1\n0,2,100,2\n")
    with pytest.raises(InputError, match=r"steps\.csv: step time must be > 0 and at most 86400 s \(row 2"):
        load_measured_points(p)
    p.write_bytes(b"prefill_tokens,decode_requests,decode_kv_tokens,step_ms\n100,0,0,5\n\xff\n")
    with pytest.raises(InputError, match=r"steps\.csv is not UTF-8 text \(line 3"):
        load_measured_points(p)


@pytest.mark.parametrize(("engine_args", "needle"), [
    ({"speedup_ratio": 1e-300}, "speedup_ratio"),  # refused by the engine-arg range (>= 1e-06) first
    ({"perf_model": {"kind": "constant", "step_ms": 1e300}}, "perf model constant"),
    ({"perf_model": {"kind": "roofline", "step_overhead_ms": 1e300}}, "perf model roofline"),
    ({"perf_model": {"kind": "polynomial", "decode": [1e300, 0, 0]}}, "perf model polynomial"),
])
def test_cli_run_with_impossible_step_times_exits_2(engine_args: dict[str, object], needle: str) -> None:
    out = subprocess.run([sys.executable, "-m", "llmreplay", "run", str(demo_trace_path()), "--max-requests", "20",
                          "--extra-engine-args", json.dumps(engine_args)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2, out.stderr
    assert needle in " ".join(out.stderr.split()) and "Traceback" not in out.stderr
    assert "TTFT" not in out.stdout  # no table of 0 ms steps
