"""The run configuration: every input of one replay, with Dynamo's names where Dynamo has one.

``llmreplay run`` flags, a ``--config`` file and a sweep's ``base:`` all resolve to one :class:`RunConfig`.
The report's ``config`` block is this model dumped with defaults filled in and output paths left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from llmreplay.engine.config import format_validation_error
from llmreplay.errors import InputError
from llmreplay.fileio import parse_json, read_structured
from llmreplay.trace.model import DEFAULT_BLOCK_SIZE

OUTPUT_FIELDS = ("report_json", "report_html", "requests_out")

#: Tokens per trace hash block when the trace does not say (Mooncake's 512)
DEFAULT_TRACE_BLOCK_SIZE = DEFAULT_BLOCK_SIZE
#: Workers one pool may start with, unless ``max_workers_per_pool`` raises it: each worker is a simulated
#: engine, so a typo such as ``--num-workers 1000000`` would otherwise build a million of them before failing
DEFAULT_MAX_WORKERS_PER_POOL = 1024
#: Planner ticks a run may evaluate one by one when its idle ticks cannot be collapsed (policy dynamo with the
#: ARIMA predictor): ~11.6 days of 5-s ticks; at ~2 ms a tick (ARIMA) about 7 minutes
DEFAULT_MAX_PLANNER_TICKS = 200_000
#: Longest simulated span any time option may name (seconds; ~3 years): keeps every time in int64 nanoseconds
MAX_SECONDS = 1e8
#: Largest SLA target (ms; ~28 hours)
MAX_SLA_MS = 1e8


def cli(*aliases: str, flag: str | None = None) -> dict[str, Any]:
    """How a config field appears on the command line beside its ``--field-name`` flag, kept on the field so
    the flag and the field cannot drift apart: Dynamo's spellings (``aliases``), or a ``flag`` that sets a
    boolean field to the opposite of its default."""
    extra: dict[str, Any] = {}
    if aliases:
        extra["cli_aliases"] = list(aliases)
    if flag is not None:
        extra["cli_flag"] = flag
    return extra


JSON_VALUE = "inline JSON, or a path to a .json/.yaml file (a leading @ is allowed)"


class RunConfig(BaseModel):
    """One replay. Field names are the ``run`` flags with ``_`` for ``-``; each field's description, default
    and range are also its flag's help, default and check (``llmreplay.cli.options``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    trace: str | None = Field(None, description="Trace file (Mooncake JSONL, Azure CSV, generic CSV/JSONL).")
    trace_format: Literal["auto", "mooncake", "azure", "csv", "jsonl"] = Field(
        "auto", description="Trace file format; auto: by extension and first line."
    )
    trace_block_size: int = Field(DEFAULT_TRACE_BLOCK_SIZE, gt=0, le=1 << 20,
                                  description="Tokens per trace hash block (Mooncake: 512).")
    start: float | None = Field(None, ge=0, le=MAX_SECONDS, description="Skip the first S seconds of the trace.")
    duration: float | None = Field(None, gt=0, le=MAX_SECONDS,
                                   description="Keep S seconds of the trace after --start.")
    max_requests: int | None = Field(None, gt=0, description="Keep at most N requests (after the time slice).")
    arrival_speedup_ratio: float = Field(1.0, ge=1e-6, le=1e6, description="Divide every inter-arrival gap by F.")
    arrival_jitter: str | None = Field(
        None, description="uniform:S spreads each arrival over [t, t+S) seconds (S at most a year); none: off."
    )
    num_workers: int = Field(1, ge=1, description="Agg workers at start (at most --max-workers-per-pool).")
    extra_engine_args: dict[str, Any] | None = Field(None, description=f"Engine args of agg workers: {JSON_VALUE}.")
    prefill_engine_args: dict[str, Any] | None = Field(
        None, description=f"Engine args of disagg prefill workers: {JSON_VALUE}."
    )
    decode_engine_args: dict[str, Any] | None = Field(
        None, description=f"Engine args of disagg decode workers: {JSON_VALUE}."
    )
    num_prefill_workers: int | None = Field(None, ge=0, description="Disagg prefill workers at start (default 1).")
    num_decode_workers: int | None = Field(None, ge=0, description="Disagg decode workers at start (default 1).")
    max_workers_per_pool: int = Field(
        DEFAULT_MAX_WORKERS_PER_POOL, ge=1, le=1_000_000,
        description="Cap on the workers a pool starts with (each is a simulated engine); raise it on purpose.",
    )
    max_planner_ticks: int = Field(
        DEFAULT_MAX_PLANNER_TICKS, ge=1, le=1_000_000_000,
        description="Cap on the planner ticks of a run whose idle ticks cannot be skipped (policy dynamo with the "
        "arima predictor), checked before the run; raise it on purpose.",
    )
    disagg_max_local_prefill_tokens: int | None = Field(
        None, gt=0, le=10_000_000,
        description="Disagg: prefill prompts with fewer uncached tokens on the decode worker (off when unset).",
    )
    planner_config: dict[str, Any] | None = Field(
        None, description=f"SLA planner config (Dynamo's fields): {JSON_VALUE}."
    )
    router: str | None = Field(None, description="round_robin | random | kv (default kv with hashes; Dynamo's "
                               "kv_router too).", json_schema_extra=cli("--router-mode"))
    router_config: dict[str, Any] | None = Field(
        None, description=f"KV router weights (Dynamo's names): {JSON_VALUE}."
    )
    replay_concurrency: int | None = Field(None, gt=0, le=10_000_000,
                                           description="Closed loop: keep N requests in flight.")
    max_sim_time_seconds: float | None = Field(None, gt=0, le=MAX_SECONDS,
                                               description="Stop the simulation at S seconds.")
    warmup_s: float = Field(0.0, ge=0, le=MAX_SECONDS,
                            description="Leave requests arriving before S out of latency stats.")
    sla_ttft_ms: float | None = Field(None, gt=0, le=MAX_SLA_MS, description="Goodput SLA on TTFT (ms).")
    sla_itl_ms: float | None = Field(None, gt=0, le=MAX_SLA_MS, description="Goodput SLA on per-request ITL (ms).")
    sla_e2e_ms: float | None = Field(None, gt=0, le=MAX_SLA_MS, description="Goodput SLA on request latency (ms).")
    benchmark_granularity: int = Field(8, ge=2, le=64,
                                       description="Points per axis of the planner's bootstrap sweep.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="The one seed of all randomness.")
    fast_forward: bool = Field(True, description="Fast-forward runs of identical decode steps (exact). Off "
                               "(--reference-steps): step-by-step reference mode, slow; for checks.",
                               json_schema_extra=cli(flag="--reference-steps"))
    report_json: str | None = Field(None, description="Write the run report (JSON) here.")
    report_html: str | None = Field(None, description="Write the HTML report here.")
    requests_out: str | None = Field(None, description="Per-request records (.parquet or .jsonl).",
                                     json_schema_extra=cli("--report-jsonl"))

    @field_validator("arrival_jitter")
    @classmethod
    def _jitter(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from llmreplay.trace.transform import parse_jitter

        try:
            parse_jitter(v)  # the one place that knows the syntax and the range of S
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _worker_caps(self) -> RunConfig:
        for name in ("num_workers", "num_prefill_workers", "num_decode_workers"):
            n = getattr(self, name)
            if n is not None and n > self.max_workers_per_pool:
                raise ValueError(
                    f"{name} is {n:,}, above max_workers_per_pool ({self.max_workers_per_pool:,}); each worker is "
                    "a simulated engine. Raise --max-workers-per-pool if you mean it"
                )
        return self

    @field_validator("router")
    @classmethod
    def _router(cls, v: str | None) -> str | None:
        from llmreplay.cluster.router import ROUTER_ALIASES, ROUTERS

        if v is None:
            return v
        v = ROUTER_ALIASES.get(v, v)
        if v not in ROUTERS:
            raise ValueError(f"must be one of {', '.join(ROUTERS)} (or Dynamo's kv_router)")
        return v

    @property
    def is_disagg(self) -> bool:
        return any(
            x is not None
            for x in (self.prefill_engine_args, self.decode_engine_args, self.num_prefill_workers,
                      self.num_decode_workers)
        )  # fmt: skip

    def resolved_dump(self) -> dict[str, Any]:
        """Every simulation input (defaults included), without output paths."""
        return self.model_dump(exclude=set(OUTPUT_FIELDS))


def load_json_option(value: str | dict[str, Any] | None, option: str, base_dir: Path | None = None
                     ) -> dict[str, Any] | None:
    """A JSON-valued option: inline JSON, or a path (optionally ``@path``) to a .json/.yaml file."""
    if value is None or isinstance(value, dict):
        return value
    text = value.strip()
    if text.startswith("{"):
        obj = parse_json(text, f"{option} (inline)")
    else:
        path = Path(text[1:] if text.startswith("@") else text)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        if not path.exists():
            raise InputError(f"{option}: '{text}' is neither inline JSON (starting with '{{') nor an existing file.")
        obj = read_mapping_file(path, option)
    if not isinstance(obj, dict):
        raise InputError(f"{option}: expected a JSON object, got {type(obj).__name__}.")
    return obj


def _option_file_dir(value: Any, base_dir: Path | None) -> Path | None:
    """The folder of the file a JSON-valued option names (None: inline JSON or no option)."""
    if not isinstance(value, str) or value.strip().startswith("{"):
        return None
    text = value.strip()
    path = Path(text[1:] if text.startswith("@") else text)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    return path.resolve().parent


def read_mapping_file(path: Path, what: str) -> dict[str, Any]:
    """A config file: JSON by extension, else YAML; it must hold a mapping."""
    obj = read_structured(path, what)
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise InputError(f"{what}: {path} must hold a mapping of keys to values, not {type(obj).__name__}.")
    return obj


def build_run_config(values: dict[str, Any], source: str = "run config", base_dir: Path | None = None
                     ) -> RunConfig:
    """Validate a mapping of run options; relative paths in a config file resolve against its folder."""
    values = dict(values)
    schedule_dir = _option_file_dir(values.get("planner_config"), base_dir) or base_dir
    for key in ("extra_engine_args", "prefill_engine_args", "decode_engine_args", "planner_config",
                "router_config"):
        if key in values:
            values[key] = load_json_option(values[key], "--" + key.replace("_", "-"), base_dir)
    planner = values.get("planner_config")
    if isinstance(planner, dict) and isinstance(planner.get("schedule"), str) and schedule_dir is not None:
        # policy scripted: the schedule CSV resolves against the folder of the file that names it
        values["planner_config"] = {**planner, "schedule": str(schedule_dir / planner["schedule"])}
    if base_dir is not None and isinstance(values.get("trace"), str):
        t = Path(values["trace"])
        if not t.is_absolute():
            values["trace"] = str(base_dir / t)
    try:
        return RunConfig.model_validate(values)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, source, sorted(RunConfig.model_fields))) from None
