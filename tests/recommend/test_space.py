"""The space file and its lines; the screening window."""

from __future__ import annotations

import numpy as np
import pytest

from llmreplay.errors import InputError
from llmreplay.recommend.search import screen_window
from llmreplay.recommend.space import SearchSpace, expand_lines, model_for_weights

from conftest import make_trace


def test_weights_map_to_the_shipped_checkpoint_of_the_same_architecture() -> None:
    assert model_for_weights("meta-llama/Llama-3.1-8B-Instruct", "fp8") == "nvidia/Llama-3.1-8B-Instruct-FP8"
    assert model_for_weights("nvidia/Llama-3.1-8B-Instruct-FP8", "bf16") == "meta-llama/Llama-3.1-8B-Instruct"
    with pytest.raises(InputError, match="no fp8 checkpoint of Qwen/Qwen3-8B"):
        model_for_weights("Qwen/Qwen3-8B", "fp8")


def test_default_space_is_agg_1_to_8_and_disagg_4_by_4_on_the_given_hardware() -> None:
    lines = expand_lines(SearchSpace(), {"gpu": "h200_sxm"}, "kv", (1000.0, 50.0))
    points = [d for line in lines for d in line.points]
    assert len(points) == 8 + 16
    assert {d.gpu for d in points} == {"h200_sxm"} and {d.router for d in points} == {"kv"}
    for line in lines:  # cost rises along every line
        gpus = [d.gpus for d in line.points]
        assert gpus == sorted(gpus) and len(set(gpus)) == len(gpus)


def test_bad_counts_are_one_clear_error() -> None:
    with pytest.raises(InputError, match=r"agg\.workers"):
        expand_lines(SearchSpace.model_validate({"agg": {"workers": [0, 2]}}), {}, "kv", (1000.0, 50.0))


def test_screen_window_matches_the_mean_token_rate() -> None:
    """A quiet first half and a busy second half: the window closest to the mean straddles them, never the
    busiest or the quietest stretch."""
    arrivals = np.concatenate([np.arange(0, 600, 2.0), np.arange(600, 1200, 0.5)])
    trace = make_trace(arrivals.tolist(), [1000] * len(arrivals), [10] * len(arrivals))
    start, length = screen_window(trace, 200) or (None, None)
    assert length == 200 and start is not None
    assert 400 <= start <= 600
    assert screen_window(trace, 700) is None  # too short to screen on
    assert screen_window(trace, None) is None
