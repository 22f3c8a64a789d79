"""Model architectures: the numbers of a Hugging Face ``config.json`` that set compute, memory and KV size.

The shipped entries copy the real ``config.json`` of each checkpoint on the Hugging Face Hub. Any other model
can be given as a path to its ``config.json`` (or the folder holding it); nothing is ever downloaded.

Counting conventions (decoder-only, SwiGLU MLP, RMSNorm, GQA attention, no biases):

- per layer: attention ``q, k, v, o`` projections, the MLP (``gate``, ``up``, ``down``: 3 × hidden ×
  intermediate) or, for MoE, ``num_experts`` such MLPs of ``moe_intermediate_size`` plus a router
  (hidden × experts), and two RMSNorm weight vectors;
- the token embedding (vocab × hidden), a final norm, and the ``lm_head`` (vocab × hidden) unless tied.

FP8 checkpoints (e.g. NVIDIA ModelOpt's ``nvidia/Llama-3.1-8B-Instruct-FP8``) quantise only the linear
layers inside the decoder blocks: embeddings, ``lm_head`` and norms stay BF16 (ModelOpt's default
``exclude_modules`` holds ``lm_head``; embeddings are never quantised), so :attr:`ModelSpec.weight_bytes`
counts those at 2 bytes. Per-tensor scales are a few bytes and ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmreplay.errors import InputError
from llmreplay.fileio import parse_json, read_text

#: bytes per element of each dtype name we accept
DTYPE_BYTES: dict[str, int] = {"bf16": 2, "fp16": 2, "fp8": 1}


def kv_dtype_bytes(kv_dtype: str) -> int:
    """Bytes per KV element: ``auto`` is the activation dtype (BF16), ``fp8`` one byte."""
    if kv_dtype == "auto":
        return 2
    try:
        return DTYPE_BYTES[kv_dtype]
    except KeyError:
        raise InputError(f"unknown kv_cache_dtype '{kv_dtype}'; allowed: auto, bf16, fp16, fp8.") from None


def kv_dtype_name(kv_dtype: str) -> str:
    """Display name of a KV dtype: ``auto`` resolves to ``bf16``."""
    return "bf16" if kv_dtype == "auto" else kv_dtype


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer as far as timing and memory are concerned."""

    name: str
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    weight_dtype: str
    tie_word_embeddings: bool
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0

    # ---- parameter counts -------------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    @property
    def attn_params_per_layer(self) -> int:
        """q, k, v and o projections of one layer."""
        h, d = self.hidden_size, self.head_dim
        return h * self.num_attention_heads * d * 2 + h * self.num_kv_heads * d * 2

    @property
    def expert_params(self) -> int:
        """One routed expert (gate, up, down) — or the dense MLP of a dense model."""
        if self.is_moe:
            return 3 * self.hidden_size * self.moe_intermediate_size
        return 3 * self.hidden_size * self.intermediate_size

    @property
    def router_params_per_layer(self) -> int:
        return self.hidden_size * self.num_experts if self.is_moe else 0

    @property
    def norm_params_per_layer(self) -> int:
        return 2 * self.hidden_size

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        """Parameters of the output projection that are not shared with the embedding."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def experts_per_layer(self) -> int:
        """MLP blocks stored per layer: all routed experts, or the one dense MLP."""
        return self.num_experts if self.is_moe else 1

    @property
    def active_experts_per_layer(self) -> int:
        """MLP blocks one token runs through per layer."""
        return self.num_experts_per_tok if self.is_moe else 1

    @property
    def params_total(self) -> int:
        """Every stored parameter."""
        per_layer = (
            self.attn_params_per_layer
            + self.experts_per_layer * self.expert_params
            + self.router_params_per_layer
            + self.norm_params_per_layer
        )
        return self.num_layers * per_layer + self.embedding_params + self.lm_head_params + self.hidden_size

    @property
    def params_active(self) -> int:
        """Parameters one token touches: for MoE only its ``num_experts_per_tok`` routed experts count."""
        inactive = (self.experts_per_layer - self.active_experts_per_layer) * self.expert_params
        return self.params_total - self.num_layers * inactive

    @property
    def linear_params_per_layer_active(self) -> int:
        """GEMM parameters one token runs through in one layer (attention + its experts + router)."""
        return (
            self.attn_params_per_layer
            + self.active_experts_per_layer * self.expert_params
            + self.router_params_per_layer
        )

    # ---- bytes --------------------------------------------------------------------------------------------
    @property
    def weight_bytes_per_param(self) -> int:
        """Bytes per parameter of the decoder-block linear layers (the quantised ones)."""
        return DTYPE_BYTES[self.weight_dtype]

    @property
    def block_linear_params(self) -> int:
        """All linear-layer parameters inside the decoder blocks (what an FP8 checkpoint quantises)."""
        return self.num_layers * (
            self.attn_params_per_layer
            + self.experts_per_layer * self.expert_params
            + self.router_params_per_layer
        )

    @property
    def weight_bytes(self) -> int:
        """Bytes of the checkpoint in GPU memory. Decoder linear layers at ``weight_dtype``; embeddings,
        ``lm_head`` and norms at BF16 (FP8 checkpoints leave them unquantised)."""
        other = self.params_total - self.block_linear_params
        return self.block_linear_params * self.weight_bytes_per_param + other * 2

    def kv_bytes_per_token(self, kv_dtype: str) -> int:
        """KV-cache bytes one token occupies: all layers, K and V, all KV heads (``auto`` = BF16)."""
        return self.num_layers * 2 * self.num_kv_heads * self.head_dim * kv_dtype_bytes(kv_dtype)

    def check_tp(self, tp: int) -> None:
        """vLLM's own constraint: TP must divide the attention heads, and KV heads must either be split
        evenly or replicated evenly."""
        if tp < 1:
            raise InputError(f"tp must be >= 1 (got {tp}).")
        if self.num_attention_heads % tp:
            raise InputError(
                f"tp {tp} does not divide the {self.num_attention_heads} attention heads of {self.name}."
            )
        if self.num_kv_heads % tp and tp % self.num_kv_heads:
            raise InputError(
                f"tp {tp} and the {self.num_kv_heads} KV heads of {self.name}: one must divide the other."
            )

    def kv_heads_per_rank(self, tp: int) -> int:
        """KV heads each TP rank stores (replicated when TP exceeds the KV head count, as vLLM does)."""
        return max(self.num_kv_heads // tp, 1)


def _dense(name: str, layers: int, hidden: int, heads: int, kv: int, inter: int, vocab: int,
           dtype: str = "bf16", tie: bool = False, head_dim: int = 128) -> ModelSpec:
    return ModelSpec(name, layers, hidden, heads, kv, head_dim, inter, vocab, dtype, tie)


MODELS: dict[str, ModelSpec] = {
    # huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
    "meta-llama/Llama-3.1-8B-Instruct": _dense(
        "meta-llama/Llama-3.1-8B-Instruct", 32, 4096, 32, 8, 14336, 128256
    ),
    # huggingface.co/nvidia/Llama-3.1-8B-Instruct-FP8: same architecture, ModelOpt FP8 linear layers
    "nvidia/Llama-3.1-8B-Instruct-FP8": _dense(
        "nvidia/Llama-3.1-8B-Instruct-FP8", 32, 4096, 32, 8, 14336, 128256, dtype="fp8"
    ),
    # huggingface.co/meta-llama/Llama-3.1-70B-Instruct/blob/main/config.json
    "meta-llama/Llama-3.1-70B-Instruct": _dense(
        "meta-llama/Llama-3.1-70B-Instruct", 80, 8192, 64, 8, 28672, 128256
    ),
    # huggingface.co/Qwen/Qwen3-8B/blob/main/config.json
    "Qwen/Qwen3-8B": _dense("Qwen/Qwen3-8B", 36, 4096, 32, 8, 12288, 151936),
    # huggingface.co/Qwen/Qwen3-32B/blob/main/config.json
    "Qwen/Qwen3-32B": _dense("Qwen/Qwen3-32B", 64, 5120, 64, 8, 25600, 151936),
    # huggingface.co/Qwen/Qwen3-30B-A3B/blob/main/config.json: 128 experts, top-8, expert FFN 768
    # (intermediate_size 6144 is unused: every layer is sparse)
    "Qwen/Qwen3-30B-A3B": ModelSpec(
        "Qwen/Qwen3-30B-A3B", 48, 2048, 32, 4, 128, 6144, 151936, "bf16", False,
        num_experts=128, num_experts_per_tok=8, moe_intermediate_size=768,
    ),
}

#: other spellings of the shipped ids (base checkpoints share the architecture; old "Meta-Llama-3.1" names)
ALIASES: dict[str, str] = {
    "meta-llama/Llama-3.1-8B": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-8B": "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Meta-Llama-3.1-8B-Instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "nvidia/Llama-3.1-8B-FP8": "nvidia/Llama-3.1-8B-Instruct-FP8",
    "meta-llama/Llama-3.1-70B": "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Meta-Llama-3.1-70B": "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Meta-Llama-3.1-70B-Instruct": "meta-llama/Llama-3.1-70B-Instruct",
    "Qwen/Qwen3-8B-Base": "Qwen/Qwen3-8B",
    "Qwen/Qwen3-32B-Base": "Qwen/Qwen3-32B",  # not released, but harmless
    "Qwen/Qwen3-30B-A3B-Base": "Qwen/Qwen3-30B-A3B",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "Qwen/Qwen3-30B-A3B",
}

_LOWER: dict[str, str] = {k.lower(): k for k in MODELS} | {k.lower(): v for k, v in ALIASES.items()}


def get_model(name_or_path: str) -> ModelSpec:
    """A shipped model by Hugging Face id (case-insensitive, aliases accepted), or one read from a
    ``config.json`` path or a folder holding one."""
    key = _LOWER.get(name_or_path.strip().lower())
    if key is not None:
        return MODELS[key]
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file():
        return load_hf_config(path)
    raise InputError(
        f"unknown model '{name_or_path}': not a shipped model id nor a path to a config.json. "
        f"Known ids: {', '.join(MODELS)}."
    )


def _is_fp8_quant(q: Any) -> bool:
    """Whether a ``quantization_config`` / ``hf_quant_config.json`` body describes FP8 weights."""
    if not isinstance(q, dict):
        return False

    def weights_only(v: Any) -> Any:  # drop KV-cache settings: an FP8 KV cache says nothing about weights
        if isinstance(v, dict):
            return {k: weights_only(x) for k, x in v.items() if "kv_cache" not in str(k).lower()}
        if isinstance(v, list):
            return [weights_only(x) for x in v]
        return v

    text = json.dumps(weights_only(q)).lower()
    return any(tag in text for tag in ("fp8", "float8", "e4m3", "float-quantized"))


def load_hf_config(path: Path) -> ModelSpec:
    """Read a Hugging Face ``config.json``. Weights are FP8 when its ``quantization_config`` or a sibling
    ``hf_quant_config.json`` (ModelOpt) says FP8, else BF16/FP16 per ``torch_dtype`` (any 16-bit dtype is
    timed as BF16)."""
    src = str(path)
    raw = parse_json(read_text(path, "model config"), f"model config {src}")
    if not isinstance(raw, dict):
        raise InputError("model config must be a JSON object", source=src)
    cfg: dict[str, Any] = raw.get("text_config", raw) if isinstance(raw.get("text_config"), dict) else raw

    def need(key: str, *alts: str) -> int:
        for k in (key, *alts):
            if k in cfg and cfg[k] is not None:
                v = cfg[k]
                if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                    raise InputError(f"field '{k}' must be a positive integer (got {v!r})", source=src)
                return v
        raise InputError(f"missing field '{key}' (a Hugging Face config.json needs it)", source=src)

    def opt(*keys: str) -> int:
        for k in keys:
            v = cfg.get(k)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise InputError(f"field '{k}' must be a whole number >= 0 (got {v!r})", source=src)
            if v > 0:
                return v
        return 0

    layers = need("num_hidden_layers")
    hidden = need("hidden_size")
    heads = need("num_attention_heads")
    kv = opt("num_key_value_heads") or heads
    if kv > heads or heads % kv:
        raise InputError(f"field 'num_key_value_heads' is {kv}, but grouped-query attention shares each KV head "
                         f"among a whole number of the {heads} attention heads: it must divide "
                         f"num_attention_heads ({heads}).", source=src)
    if not opt("head_dim") and hidden < heads:
        raise InputError(f"field 'hidden_size' ({hidden}) is smaller than 'num_attention_heads' ({heads}), so "
                         "each head would have less than one dimension; give 'head_dim' or fix the sizes.",
                         source=src)
    head_dim = opt("head_dim") or hidden // heads
    experts = opt("num_experts", "n_routed_experts", "num_local_experts")
    top_k = opt("num_experts_per_tok") if experts else 0
    moe_inter = opt("moe_intermediate_size") if experts else 0
    inter = opt("intermediate_size")
    if experts and not moe_inter:
        moe_inter = inter  # Mixtral-style configs name the expert FFN intermediate_size
    if not inter and not experts:
        raise InputError("missing field 'intermediate_size' (a Hugging Face config.json needs it)",
                         source=src)
    if experts and not top_k:
        raise InputError("MoE config without 'num_experts_per_tok'", source=src)
    vocab = need("vocab_size")
    tie = bool(cfg.get("tie_word_embeddings", raw.get("tie_word_embeddings", False)))

    fp8 = _is_fp8_quant(raw.get("quantization_config")) or _is_fp8_quant(cfg.get("quantization_config"))
    quant_file = path.parent / "hf_quant_config.json"
    if not fp8 and quant_file.is_file():
        fp8 = _is_fp8_quant(parse_json(read_text(quant_file, "quantisation config"),
                                       f"quantisation config {quant_file}"))
    dtype = str(cfg.get("torch_dtype", raw.get("torch_dtype", "bfloat16")) or "bfloat16").lower()
    if not fp8 and "float8" in dtype:
        fp8 = True
    name = str(raw.get("_name_or_path") or path.parent.name or src)
    return ModelSpec(
        name=name, num_layers=layers, hidden_size=hidden, num_attention_heads=heads, num_kv_heads=kv,
        head_dim=head_dim, intermediate_size=inter, vocab_size=vocab, weight_dtype="fp8" if fp8 else "bf16",
        tie_word_embeddings=tie, num_experts=experts, num_experts_per_tok=top_k,
        moe_intermediate_size=moe_inter,
    )
