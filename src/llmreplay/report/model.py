"""The run report as typed models: what ``llmreplay run`` writes (``--report-json``) and what the HTML report,
``compare``, ``report`` and sweeps read.

**Versioning.** ``schema`` is ``llmreplay.run/<major>.<minor>``. Adding a field (always optional, with a default,
so older reports still load) bumps the minor version; renaming or removing a field, or changing its meaning or
type, bumps the major. A reader accepts every minor version of its major (``llmreplay.run/1`` reads as 1.0) and
refuses another major with a message. The JSON Schema of these models ships in the package
(``llmreplay/data/run_report.schema.json``, printed by ``llmreplay schema``); a test fails when it is stale.

Blocks other parts of llmreplay fill (``planner``, ``baselines``, planner ticks) accept fields this version does
not list (``extra="allow"``), so a newer planner's diagnostics survive a round trip through an older reader.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from llmreplay.errors import InputError
from llmreplay.fileio import parse_json, read_text

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 2
SCHEMA_ID = f"llmreplay.run/{SCHEMA_MAJOR}.{SCHEMA_MINOR}"
SCHEMA_FILE = "run_report.schema.json"
_SCHEMA_RE = re.compile(r"^llmreplay\.run/(\d+)(?:\.(\d+))?$")


class _Block(BaseModel):
    """A report block: unknown fields are ignored on reading (a newer minor version may add some)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _OpenBlock(BaseModel):
    """A block other components fill: unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Stats(_Block):
    """Statistics of a record metric over the measured requests (None: no request had a value)."""

    avg: float | None = None
    min: float | None = None
    max: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    std: float | None = None

    def at(self, stat: str) -> float | None:
        value: float | None = getattr(self, stat)
        return value


class Requests(_Block):
    total: int
    completed: int
    rejected: int = 0
    unfinished: int = 0
    rejected_by_reason: dict[str, int] = Field(default_factory=dict)


class Metrics(_Block):
    """The ``metrics`` block (definitions: :mod:`llmreplay.metrics.definitions`)."""

    ttft_ms: Stats = Field(default_factory=Stats)
    itl_ms: Stats = Field(default_factory=Stats)
    request_latency_ms: Stats = Field(default_factory=Stats)
    isl: Stats = Field(default_factory=Stats)
    osl: Stats = Field(default_factory=Stats)
    inter_chunk_latency_ms: Stats = Field(default_factory=Stats)
    request_throughput_rps: float | None = None
    output_token_throughput_tps: float | None = None
    prefix_cache_hit_rate: float | None = None
    prefix_cache_block_hit_rate: float | None = None
    duration_s: float = 0.0
    latency_requests: int | None = None

    def stats(self, key: str) -> Stats:
        value: Stats = getattr(self, key)
        return value


class MissWindow(_Block):
    start_s: float
    end_s: float
    requests: int


class MissReason(_Block):
    """Requests that missed the SLA for one reason (:mod:`llmreplay.metrics.misses`) and where they arrived."""

    reason: str
    requests: int
    share: float  # of the attainment population
    windows: list[MissWindow] = Field(default_factory=list)  # busiest first


class SlaBlock(_Block):
    """The SLA the run was judged on and how it fared. ``within_*``: share of the attainment population within
    that one SLA (None when that SLA was not given)."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None
    attainment: float | None = None
    goodput_rps: float | None = None
    good_requests: int | None = None
    population: int | None = None
    within_ttft: float | None = None
    within_itl: float | None = None
    within_e2e: float | None = None
    within_ttft_and_itl: float | None = None
    miss_reasons: list[MissReason] | None = None  # most requests first

    @property
    def given(self) -> bool:
        return self.ttft_ms is not None or self.itl_ms is not None or self.e2e_ms is not None

    def limits(self) -> dict[str, float]:
        """The SLAs given, as ``{"ttft_ms": 2500.0, ...}``."""
        return {k: v for k, v in (("ttft_ms", self.ttft_ms), ("itl_ms", self.itl_ms), ("e2e_ms", self.e2e_ms))
                if v is not None}


class Cost(_Block):
    gpu_hours: float
    peak_gpus: int
    replica_transitions: int = 0
    reversals: int = 0
    energy_kwh: float | None = None
    joules_per_output_token: float | None = None
    cost_usd: float | None = None


class PoolSummary(_Block):
    workers_start: int
    workers_peak: int
    gpus_per_worker: int = 1
    gpu_hours: float = 0.0
    utilization: float | None = None
    kv_peak_fraction: float | None = None
    queued_prefill_tokens_peak: int = 0
    waiting_requests_peak: int = 0
    handoff_wait_peak: int | None = None
    num_gpu_blocks: int | None = None
    block_size: int | None = None
    kv_capacity_tokens: int | None = None
    steps: int = 0
    preemptions: int = 0
    evicted_blocks: int = 0


class WorkerSeries(_Block):
    """One worker's per-interval maxima (None: the worker did not step in that interval)."""

    id: int
    started_s: float | None = None
    stopped_s: float | None = None
    kv_used_fraction_max: list[float | None] = Field(default_factory=list)
    queued_prefill_tokens_max: list[float | None] = Field(default_factory=list)
    waiting_max: list[float | None] = Field(default_factory=list)
    total_kv_tokens_max: list[float | None] | None = None
    busy_fraction: list[float | None] = Field(default_factory=list)


class PoolSeries(_Block):
    kv_capacity_tokens: int | None = None
    active_workers: list[int] = Field(default_factory=list)
    provisioned_workers: list[int] = Field(default_factory=list)
    gpus: list[int] = Field(default_factory=list)
    gpu_seconds: list[float] | None = None
    workers: list[WorkerSeries] = Field(default_factory=list)


class Cdf(_Block):
    """Quantiles at ``percent`` (0..100) of the measured requests' latencies (ms)."""

    percent: list[float] = Field(default_factory=list)
    ttft_ms: list[float] | None = None
    itl_ms: list[float] | None = None
    request_latency_ms: list[float] | None = None

    def values(self, key: str) -> list[float] | None:
        value: list[float] | None = getattr(self, key)
        return value


class Timeseries(_Block):
    """Per-interval series: interval ``i`` covers ``[t_s[i], t_s[i] + bin_s)`` seconds."""

    bin_s: float = 1.0
    arrival_quantum_s: float | None = None  # the trace's timestamp step (0: continuous); intervals are multiples
    t_s: list[float] = Field(default_factory=list)
    arrivals: list[int] = Field(default_factory=list)
    completions: list[int] = Field(default_factory=list)
    arrival_rps: list[float] = Field(default_factory=list)
    ttft_ms_avg: list[float | None] = Field(default_factory=list)
    ttft_ms_p90: list[float | None] = Field(default_factory=list)
    itl_ms_avg: list[float | None] = Field(default_factory=list)
    itl_ms_p90: list[float | None] = Field(default_factory=list)
    isl_avg: list[float | None] = Field(default_factory=list)
    osl_avg: list[float | None] = Field(default_factory=list)
    prefix_cache_hit_rate: list[float | None] = Field(default_factory=list)
    sla_attainment: list[float | None] | None = None
    latency_requests: list[int] | None = None  # requests behind ttft_ms_avg per interval
    itl_requests: list[int] | None = None  # requests behind itl_ms_avg per interval
    prompt_tokens: list[int] | None = None  # prompt tokens behind prefix_cache_hit_rate per interval
    sla_population: list[int] | None = None  # requests behind sla_attainment per interval
    active_requests: list[int] | None = None  # requests in flight at some time in each interval
    pools: dict[str, PoolSeries] = Field(default_factory=dict)
    cdf: Cdf | None = None

    def series(self, key: str) -> list[Any] | None:
        value: list[Any] | None = getattr(self, key, None)
        return value


class PlannerTick(_OpenBlock):
    """One planner tick's diagnostics (None where not computed on that tick). ``count``: how many ticks this
    entry stands for, at ``t_s`` and every ``every_s`` after it: a collapsed idle stretch, whose ticks repeat
    (absent: one tick)."""

    t_s: float
    count: int | None = None
    every_s: float | None = None
    replicas_prefill: int | None = None
    replicas_decode: int | None = None
    floor_prefill: int | None = None
    floor_decode: int | None = None
    predicted_rps: float | None = None
    predicted_isl: float | None = None
    predicted_osl: float | None = None
    observed_rps: float | None = None
    observed_isl: float | None = None
    observed_osl: float | None = None
    observed_ttft_ms: float | None = None
    observed_itl_ms: float | None = None
    est_ttft_ms: float | None = None
    est_itl_ms: float | None = None
    engine_rps_prefill: float | None = None
    engine_rps_decode: float | None = None
    max_batch: int | None = None
    reason_load: str | None = None
    reason_load_prefill: str | None = None
    reason_load_decode: str | None = None
    reason_throughput: str | None = None
    reason_throughput_prefill: str | None = None
    reason_throughput_decode: str | None = None

    @property
    def last_t_s(self) -> float:
        """The time of the last tick this entry stands for."""
        return self.t_s + ((self.count or 1) - 1) * (self.every_s or 0.0)

    def get(self, key: str) -> Any:
        """A field or an extra diagnostic by name (None when absent)."""
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {}).get(key)


class ScalingEvent(_Block):
    t_s: float
    component: str
    from_: int = Field(alias="from")
    to: int
    reason: str = ""


class PlannerReport(_OpenBlock):
    policy: str | None = None
    ticks: list[PlannerTick] = Field(default_factory=list)
    decisions: dict[str, dict[str, int]] = Field(default_factory=dict)
    events: list[ScalingEvent] = Field(default_factory=list)
    regression: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] = Field(default_factory=dict)


class BaselineResult(_OpenBlock):
    """One baseline (best fixed fleet, hindsight-optimal schedule, ...): its own fields."""


class Baselines(_OpenBlock):
    best_fixed: BaselineResult | None = None
    hindsight: BaselineResult | None = None
    regret: BaselineResult | None = None


class Sim(_Block):
    wall_s: float = 0.0
    replay_wall_s: float | None = None
    simulated_s: float = 0.0
    requests_per_wall_s: float | None = None
    simulated_s_per_wall_s: float | None = None
    events: int | None = None
    engine_steps: int | None = None
    planner_wall_s: float | None = None
    peak_rss_mb: float | None = None
    version: str | None = None


class ConfigEcho(_OpenBlock):
    """The run's resolved config (every ``RunConfig`` field) plus what was derived from it. Typed here: the
    derived facts the report's readers use; the ``RunConfig`` fields are kept as given."""

    trace: str | None = None
    trace_requests: int | None = None
    topology: str | None = None
    router: str | None = None
    hardware: dict[str, Any] | None = None
    perf_model: dict[str, str] | str | None = None
    num_gpu_blocks: dict[str, int] | None = None
    planner_config: dict[str, Any] | None = None

    def get(self, key: str) -> Any:
        """A config field by name, typed or not (None when absent)."""
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {}).get(key)


class RunReport(_Block):
    """One run's report."""

    schema_id: str = Field(SCHEMA_ID, alias="schema")
    config: ConfigEcho = Field(default_factory=ConfigEcho)
    requests: Requests
    metrics: Metrics = Field(default_factory=Metrics)
    sla: SlaBlock = Field(default_factory=SlaBlock)
    cost: Cost
    pools: dict[str, PoolSummary] = Field(default_factory=dict)
    timeseries: Timeseries = Field(default_factory=Timeseries)
    planner: PlannerReport | None = None
    baselines: Baselines | None = None
    sim: Sim = Field(default_factory=Sim)

    @field_validator("schema_id")
    @classmethod
    def _known_major(cls, v: str) -> str:
        m = _SCHEMA_RE.match(v)
        if m is None:
            raise ValueError(f'"schema" is {v!r}; expected "llmreplay.run/<major>.<minor>"')
        if int(m.group(1)) != SCHEMA_MAJOR:
            raise ValueError(f'"schema" is {v!r}: this llmreplay reads llmreplay.run/{SCHEMA_MAJOR}.x reports; '
                             "redraw it with the llmreplay version that wrote it")
        return v

    def to_json_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the form written to disk)."""
        data: dict[str, Any] = self.model_dump(mode="json", by_alias=True)
        return data


def parse_report(data: Any, source: str) -> RunReport:
    """Validate report data (a parsed JSON object), naming ``source`` and the first bad field on failure."""
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("llmreplay.run/"):
        raise InputError(f'{source}: not an llmreplay run report (expected "schema": "{SCHEMA_ID}").')
    try:
        return RunReport.model_validate(data)
    except ValidationError as exc:
        errs = exc.errors()
        first = errs[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})" if len(errs) > 1 else ""
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise InputError(f"{source}: field {where}: {msg}{more}. The report must follow the run report "
                         f"schema {SCHEMA_ID} (print it with `llmreplay schema`).") from None


def load_report(path: Any) -> RunReport:
    """Read and validate a run report JSON file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file.")
    if p.is_dir():
        raise InputError(f"{p}: is a folder; give a run report JSON file.")
    data = parse_json(read_text(p, "run report"), f"run report {p}")  # not UTF-8, nested 100k deep: exit 2
    return parse_report(data, str(p))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`RunReport`, with its id and version."""
    schema = RunReport.model_json_schema(by_alias=True, mode="serialization")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "version": f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}", **schema}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def write_schema_file() -> None:
    """Regenerate the shipped schema file from the models (run after changing a model; see the module doc)."""
    path = Path(__file__).resolve().parents[1] / "data" / SCHEMA_FILE
    path.write_text(json_schema_text(), encoding="utf-8")


def shipped_schema_text() -> str:
    """The schema file shipped in the package (``llmreplay schema`` prints it)."""
    return resources.files("llmreplay").joinpath("data", SCHEMA_FILE).read_text(encoding="utf-8")
