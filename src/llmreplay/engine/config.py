"""Engine arguments: vLLM / Dynamo-mocker names and defaults, validated by pydantic.

One source of truth for every engine knob: its default, its type and its doc live on the field, and the
CLI, the report's ``config`` echo and ``docs/usage.md`` all read from here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from llmreplay.errors import InputError

DEFAULT_GPU = "h200_sxm"
DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
#: Dynamo's mocker names for the hardware keys: writing any of them without ``perf_model`` selects AIC, as in
#: Dynamo (the mocker times steps with AIConfigurator when it is given an AIC system/model)
DYNAMO_AIC_KEYS = ("aic_system", "aic_model_path", "aic_tp_size", "aic_backend")


class EngineArgs(BaseModel):
    """Arguments of one engine replica (one worker). Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)

    block_size: int = Field(16, gt=0, le=4096, description="Tokens per KV block (vLLM's default 16).")
    num_gpu_blocks: int | None = Field(
        None, gt=0, le=1_000_000_000, description="KV blocks per worker. Unset: derived from GPU memory as vLLM does."
    )
    max_num_seqs: int = Field(256, gt=0, le=1_000_000, description="Most requests running at once (vLLM).")
    max_num_batched_tokens: int = Field(8192, gt=0, le=100_000_000, description="Token budget of one step (vLLM).")
    enable_prefix_caching: bool = Field(True, description="Keep freed full blocks cached by prefix hash.")
    prefix_cache_on_schedule: bool = Field(
        False, description="Offer a prompt's full blocks to the prefix cache when its chunk is scheduled, so a "
        "request admitted later in the same step reuses them (vLLM V1's allocate_slots, Dynamo's mocker); "
        "false: once computed."
    )
    evict_prompt_head_first: bool = Field(
        False, description="When a finished request's cached blocks are freed, queue them for eviction from the "
        "prompt's head (Dynamo 1.6.1's mocker: a long idle prefix then loses its start first; a preempted one's "
        "still go tail first); false: tail first (vLLM)."
    )
    admit_whole_prompt: bool = Field(
        False, description="Admit a waiting request only when the free KV blocks hold its whole prompt (less its "
        "cached prefix in use), as Dynamo's mocker does (decide_waiting_admission); false: vLLM, blocks for the "
        "first chunk only."
    )
    enable_chunked_prefill: bool = Field(
        True, description="Split prompts longer than the step budget over several steps."
    )
    startup_time: float = Field(0.0, ge=0, le=1e6, description="Seconds from a planner scale-up to the worker serving.")
    speedup_ratio: float = Field(1.0, ge=1e-6, le=1e6, description="Divide every step time by this factor.")
    preemption_mode: Literal["lifo", "fifo"] = Field(
        "lifo", description="Which running request is preempted when KV runs out: newest (vLLM) or oldest."
    )
    max_model_len: int | None = Field(None, gt=0, le=100_000_000,
                                      description="Longest prompt+output allowed; unset: no limit.")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="Share of GPU memory vLLM may use (weights + activations + KV)."
    )
    kv_cache_dtype: Literal["auto", "bf16", "fp16", "fp8"] = Field(
        "auto", description="KV cache element type; auto = the model's activation dtype (bf16)."
    )
    kv_transfer_bandwidth: float = Field(
        64.0, ge=1e-3, le=1e6, description="Disagg KV transfer link, GB/s (Dynamo's default 64: inter-node RDMA)."
    )
    kv_transfer_latency_ms: float = Field(0.0, ge=0, le=1e6, description="Fixed latency added to each KV transfer.")
    worker_type: Literal["aggregated", "agg", "prefill", "decode"] | None = Field(
        None, description="Disagg role of this pool's workers; must match the pool."
    )
    perf_model: str | dict[str, Any] = Field(
        "roofline", description='Step-time model: "roofline", "polynomial", or {"kind": ..., params}.'
    )
    gpu: str | None = Field(None, alias="aic_system", description="GPU system name, e.g. h200_sxm.")
    model: str | None = Field(
        None, alias="aic_model_path", description="Model: a Hugging Face id we ship, or a config.json path."
    )
    tp: int | None = Field(None, gt=0, le=1024, alias="aic_tp_size",
                           description="Tensor-parallel size (GPUs per worker).")
    aic_backend: str | None = Field(None, description="Dynamo's AIC backend name (vllm, sglang, trtllm).")

    #: True when ``perf_model`` was not written and Dynamo's ``aic_*`` names selected AIC
    _aic_by_dynamo_names: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _dynamo_names_select_aic(cls, data: Any, handler: ModelWrapValidatorHandler[EngineArgs]) -> EngineArgs:
        implied = isinstance(data, dict) and "perf_model" not in data and any(k in data for k in DYNAMO_AIC_KEYS)
        args = handler({**data, "perf_model": "aic"} if implied else data)
        if implied:
            args._aic_by_dynamo_names = True
        return args

    @property
    def aic_selected_by_dynamo_names(self) -> bool:
        return self._aic_by_dynamo_names

    @model_validator(mode="after")
    def _check(self) -> EngineArgs:
        if not self.enable_chunked_prefill and self.max_model_len is not None \
                and self.max_model_len > self.max_num_batched_tokens:
            # vLLM refuses this combination at start-up; so do we.
            raise ValueError(
                "with enable_chunked_prefill false, max_num_batched_tokens must be >= max_model_len"
            )
        return self

    @property
    def gpu_name(self) -> str:
        return self.gpu or DEFAULT_GPU

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODEL

    @property
    def tp_size(self) -> int:
        return self.tp or 1

    @property
    def hardware_defaulted(self) -> bool:
        return self.gpu is None and self.model is None and self.tp is None


def valid_engine_keys() -> list[str]:
    keys: list[str] = []
    for name, f in EngineArgs.model_fields.items():
        keys.append(name)
        if f.alias and f.alias != name:
            keys.append(f.alias)
    return sorted(keys)


def parse_engine_args(raw: dict[str, Any] | None, *, source: str = "engine args") -> EngineArgs:
    """Validate a user's engine-args object, turning pydantic's errors into one readable paragraph."""
    try:
        return EngineArgs.model_validate(raw or {})
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source, valid_engine_keys())) from None


def format_validation_error(exc: ValidationError, source: str, valid: list[str]) -> str:
    """pydantic's errors as one paragraph: each names its field and what was given; the valid keys are listed
    only when a key is unknown (a misspelt key is the one mistake the list helps with)."""
    parts: list[str] = []
    unknown = False
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            unknown = True
            parts.append(f"unknown key '{loc}'")
        elif not loc:  # a check across fields: the message names them
            parts.append(msg)
        else:
            parts.append(f"field '{loc}': {msg} (got {err.get('input')!r})")
    text = f"{source}: " + "; ".join(parts) + "."
    return text + (" Valid keys: " + ", ".join(valid) + "." if unknown else "")
