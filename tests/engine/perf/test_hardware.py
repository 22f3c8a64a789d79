"""GPU and model specs, config.json loading, the hardware setup and its derived KV capacity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmreplay.engine.config import EngineArgs
from llmreplay.engine.perf.hardware import GPUS, GiB, get_gpu
from llmreplay.engine.perf.hw import HardwareSetup, resolve_hardware
from llmreplay.engine.perf.models import MODELS, get_model
from llmreplay.errors import InputError

LLAMA8B_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}


# ---- GPUs -------------------------------------------------------------------------------------------------
def test_gpu_registry_has_aiconfigurator_names_and_citations() -> None:
    assert set(GPUS) >= {"a100_sxm", "h100_sxm", "h200_sxm", "b200_sxm", "l40s"}
    for g in GPUS.values():
        assert g.source and g.memory_bytes > 0 and g.hbm_bytes_per_s > 0
        assert set(g.dense_tflops) == {"bf16", "fp8"}
        assert g.dense_tflops["fp8"] >= g.dense_tflops["bf16"]


def test_h200_figures() -> None:
    h200 = get_gpu("h200_sxm")
    assert h200.memory_bytes == 141 * GiB
    assert h200.hbm_bytes_per_s == 4.8e12
    assert h200.dense_tflops == {"bf16": 989.0, "fp8": 1979.0}
    assert h200.label == "H200 SXM"
    assert get_gpu("H200-SXM") is h200


def test_a100_has_no_native_fp8() -> None:
    a100 = get_gpu("a100_sxm")
    assert a100.dense_tflops["fp8"] == a100.dense_tflops["bf16"]
    assert not a100.has_native_fp8 and get_gpu("h100_sxm").has_native_fp8


def test_unknown_gpu_lists_known_names() -> None:
    with pytest.raises(InputError, match=r"unknown GPU 'v100'.*a100_sxm.*h200_sxm.*l40s"):
        get_gpu("v100")


# ---- models -----------------------------------------------------------------------------------------------
def test_llama_8b_counts() -> None:
    m = get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert m.params_total == 8_030_261_248  # the published 8.03B
    assert m.params_active == m.params_total
    assert m.kv_bytes_per_token("auto") == 131_072
    assert m.kv_bytes_per_token("bf16") == 131_072
    assert m.kv_bytes_per_token("fp8") == 65_536
    assert m.weight_bytes == 2 * m.params_total


def test_fp8_checkpoint_keeps_embeddings_and_lm_head_in_bf16() -> None:
    fp8 = get_model("nvidia/Llama-3.1-8B-Instruct-FP8")
    bf16 = get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert fp8.weight_dtype == "fp8" and fp8.params_total == bf16.params_total
    embed_and_head = 2 * 128256 * 4096
    assert fp8.weight_bytes == fp8.block_linear_params + 2 * (fp8.params_total - fp8.block_linear_params)
    assert fp8.weight_bytes > fp8.params_total  # not simply one byte per parameter
    assert fp8.params_total - fp8.block_linear_params > embed_and_head


def test_moe_active_params() -> None:
    m = get_model("Qwen/Qwen3-30B-A3B")
    assert m.num_experts == 128 and m.num_experts_per_tok == 8 and m.moe_intermediate_size == 768
    assert 30.0e9 < m.params_total < 31.0e9  # "30B"
    assert 3.0e9 < m.params_active < 3.6e9  # "A3B"
    assert m.kv_bytes_per_token("auto") == 48 * 2 * 4 * 128 * 2


@pytest.mark.parametrize(("name", "billions"), [("meta-llama/Llama-3.1-70B-Instruct", 70.6),
                                                 ("Qwen/Qwen3-8B", 8.2), ("Qwen/Qwen3-32B", 32.8)])
def test_dense_param_counts(name: str, billions: float) -> None:
    assert get_model(name).params_total / 1e9 == pytest.approx(billions, abs=0.1)


def test_aliases_and_case() -> None:
    want = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
    assert get_model("meta-llama/Meta-Llama-3.1-8B") is want
    assert get_model("meta-llama/Llama-3.1-8B") is want
    assert get_model("META-LLAMA/llama-3.1-8b-instruct") is want
    assert get_model("Qwen/Qwen3-30B-A3B-Base") is MODELS["Qwen/Qwen3-30B-A3B"]


def test_unknown_model_lists_known_ids() -> None:
    pattern = r"unknown model 'acme/Giant-1T'.*meta-llama/Llama-3.1-8B-Instruct.*Qwen3-30B"
    with pytest.raises(InputError, match=pattern):
        get_model("acme/Giant-1T")


# ---- config.json ------------------------------------------------------------------------------------------
def test_config_json_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA8B_CONFIG))
    from_file = get_model(str(tmp_path / "config.json"))
    from_dir = get_model(str(tmp_path))
    ref = MODELS["meta-llama/Llama-3.1-8B-Instruct"]
    for m in (from_file, from_dir):
        assert m.params_total == ref.params_total
        assert m.head_dim == 128 and m.weight_dtype == "bf16"
        assert m.kv_bytes_per_token("auto") == 131_072


def test_config_json_fp8_from_sibling_quant_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA8B_CONFIG))
    (tmp_path / "hf_quant_config.json").write_text(
        json.dumps({"quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": None}}))
    assert get_model(str(tmp_path)).weight_dtype == "fp8"


def test_config_json_fp8_from_quantization_config(tmp_path: Path) -> None:
    cfg = dict(LLAMA8B_CONFIG, quantization_config={"quant_method": "fp8", "activation_scheme": "dynamic"})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert get_model(str(tmp_path)).weight_dtype == "fp8"


def test_config_json_fp8_kv_only_is_not_fp8_weights(tmp_path: Path) -> None:
    cfg = dict(LLAMA8B_CONFIG, quantization_config={"quant_method": "awq", "kv_cache_scheme": "fp8"})
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert get_model(str(tmp_path)).weight_dtype == "bf16"


def test_config_json_moe_spellings(tmp_path: Path) -> None:
    cfg = {
        "num_hidden_layers": 48, "hidden_size": 2048, "num_attention_heads": 32, "num_key_value_heads": 4,
        "head_dim": 128, "intermediate_size": 6144, "moe_intermediate_size": 768, "n_routed_experts": 128,
        "num_experts_per_tok": 8, "vocab_size": 151936,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    m = get_model(str(tmp_path / "config.json"))
    assert m.params_total == MODELS["Qwen/Qwen3-30B-A3B"].params_total
    assert m.params_active == MODELS["Qwen/Qwen3-30B-A3B"].params_active


def test_config_json_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = dict(LLAMA8B_CONFIG)
    del bad["hidden_size"]
    (tmp_path / "config.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match=r"config\.json.*missing field 'hidden_size'"):
        get_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match=r"config\.json is not valid JSON.*line 1, column 2"):
        get_model(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps(dict(LLAMA8B_CONFIG, num_hidden_layers="32")))
    with pytest.raises(InputError, match=r"'num_hidden_layers' must be a positive integer"):
        get_model(str(tmp_path))


@pytest.mark.parametrize(("change", "needle"), [
    ({"hidden_size": 16, "num_attention_heads": 32}, "field 'hidden_size' (16) is smaller than"),
    ({"num_key_value_heads": 64}, "field 'num_key_value_heads' is 64"),
    ({"num_key_value_heads": 5}, "must divide num_attention_heads (32)"),
    ({"num_key_value_heads": -8}, "field 'num_key_value_heads' must be a whole number >= 0"),
    ({"num_experts": "128"}, "field 'num_experts' must be a whole number >= 0"),
])
def test_config_json_with_impossible_attention_shapes_is_rejected(tmp_path: Path, change: dict[str, object],
                                                                  needle: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps(dict(LLAMA8B_CONFIG, **change)))
    with pytest.raises(InputError) as exc:
        get_model(str(tmp_path))
    assert str(exc.value).startswith(str(tmp_path / "config.json")) and needle in str(exc.value)


def test_config_json_that_is_not_utf8_names_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{\n  "hidden_size": "\xff"\n}')
    with pytest.raises(InputError, match=r"config\.json is not UTF-8 text \(line 2"):
        get_model(str(tmp_path))


# ---- hardware setup ---------------------------------------------------------------------------------------
def test_default_setup_and_describe() -> None:
    hw = resolve_hardware(EngineArgs())
    assert hw.describe() == "H200 SXM ×1 (TP1) · meta-llama/Llama-3.1-8B-Instruct (bf16 weights, bf16 KV)"
    assert hw.kv_bytes_per_token == 131_072
    fp8 = resolve_hardware(EngineArgs(gpu="h100_sxm", model="nvidia/Llama-3.1-8B-Instruct-FP8", tp=2,
                                      kv_cache_dtype="fp8"))
    assert fp8.describe() == "H100 SXM ×2 (TP2) · nvidia/Llama-3.1-8B-Instruct-FP8 (fp8 weights, fp8 KV)"
    assert fp8.kv_bytes_per_token == 65_536  # split over 2 ranks, summed back


def test_default_kv_capacity_is_what_vllm_gets() -> None:
    hw = resolve_hardware(EngineArgs())
    blocks = hw.derive_num_gpu_blocks(16, 0.9, 8192)
    kv_bytes = blocks * 16 * hw.kv_bytes_per_token
    # vLLM reports ~110 GiB (~115 GB) of KV for Llama-3.1-8B BF16 on an H200 at utilisation 0.9
    assert 100e9 < kv_bytes < 120e9
    assert 800_000 < blocks * 16 < 950_000
    assert hw.derive_num_gpu_blocks(16, 0.5, 8192) < blocks
    assert hw.derive_num_gpu_blocks(16, 0.9, 32768) < blocks
    assert hw.derive_num_gpu_blocks(32, 0.9, 8192) == pytest.approx(blocks / 2, abs=1)
    fp8kv = HardwareSetup(hw.gpu, hw.model, 1, "fp8").derive_num_gpu_blocks(16, 0.9, 8192)
    assert fp8kv == pytest.approx(2 * blocks, abs=2)


def test_tp_replicates_kv_heads_beyond_their_count() -> None:
    m = get_model("Qwen/Qwen3-30B-A3B")  # 4 KV heads
    hw8 = HardwareSetup(get_gpu("h200_sxm"), m, 8, "auto")
    assert hw8.kv_bytes_per_token_per_rank == 48 * 2 * 1 * 128 * 2
    assert hw8.kv_bytes_per_token == 2 * m.kv_bytes_per_token("auto")


def test_tp_must_divide_heads() -> None:
    with pytest.raises(InputError, match=r"tp 3 does not divide the 32 attention heads"):
        HardwareSetup(get_gpu("h200_sxm"), get_model("Qwen/Qwen3-8B"), 3, "auto")


def test_model_that_does_not_fit_says_by_how_much() -> None:
    hw = HardwareSetup(get_gpu("h100_sxm"), get_model("meta-llama/Llama-3.1-70B-Instruct"), 1, "auto")
    with pytest.raises(InputError, match=r"does not fit: weights need 131\.4 GiB per GPU but only 72\.0 GiB"):
        hw.derive_num_gpu_blocks(16, 0.9, 8192)
    assert HardwareSetup(hw.gpu, hw.model, 4, "auto").derive_num_gpu_blocks(16, 0.9, 8192) > 10_000


def test_no_room_left_for_kv_is_an_error() -> None:
    hw = HardwareSetup(get_gpu("l40s"), get_model("Qwen/Qwen3-8B"), 1, "auto")
    with pytest.raises(InputError, match=r"leaves no room for the KV cache"):
        hw.derive_num_gpu_blocks(16, 0.4, 8192)


def test_resolve_hardware_errors() -> None:
    with pytest.raises(InputError, match="unknown GPU"):
        resolve_hardware(EngineArgs(gpu="tpu_v5"))
    with pytest.raises(InputError, match="unknown model"):
        resolve_hardware(EngineArgs(model="no/such-model"))
