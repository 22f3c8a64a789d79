"""The search space of ``llmreplay recommend``: which GPUs, TP sizes, weight precisions, topologies, worker
counts and routers may be deployed (the space file; schema in ``docs/usage.md``), and the deployments in it.

Deployments are grouped into *lines*: the deployments of one (GPU, TP, weights, router, topology) that differ
only in one worker count — agg workers, or decode workers for a fixed number of prefill workers. Along a line
cost rises with the count and SLA attainment does not fall (see :mod:`llmreplay.recommend.search`), which is
what makes a binary search of counts valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmreplay.config import read_mapping_file
from llmreplay.cost.prices import GpuPrice, price_of
from llmreplay.engine.config import EngineArgs, format_validation_error, parse_engine_args
from llmreplay.engine.perf.hardware import get_gpu
from llmreplay.engine.perf.models import MODELS, ModelSpec, get_model
from llmreplay.errors import InputError
from llmreplay.planner.config import parse_planner_config
from llmreplay.sweep.spec import parse_range

#: engine-arg keys the space sets on every deployment (both spellings: ours and Dynamo's aic_*)
HARDWARE_KEYS = ("gpu", "aic_system", "model", "aic_model_path", "tp", "aic_tp_size")


class AggSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workers: list[int] | str = Field("1..8", description="Agg worker counts: a list or 'a..b'.")


class DisaggSpace(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefill: list[int] | str = Field("1..4", description="Prefill worker counts: a list or 'a..b'.")
    decode: list[int] | str = Field("1..4", description="Decode worker counts: a list or 'a..b'.")


class PlannerFleet(BaseModel):
    """A planner-managed fleet: the SLA planner scales it between ``min_endpoint`` and ``max_gpu_budget``."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["agg", "disagg"] = Field("agg", description="Topology the planner manages.")
    planner_config: dict[str, Any] = Field(default_factory=dict,
                                           description="Planner config (Dynamo's fields, e.g. min_endpoint, "
                                           "max_gpu_budget); ttft/itl default to the SLA.")


class SearchSpace(BaseModel):
    """The space file. Every key is optional; the defaults cover agg 1..8 and disagg 1..4 × 1..4 workers on the
    GPU, TP and weights of ``--extra-engine-args``."""

    model_config = ConfigDict(extra="forbid")
    gpus: list[str] | None = Field(None, description="GPU names (default: the engine args' GPU).")
    tp: list[int] | None = Field(None, description="GPUs per worker (default: the engine args' TP).")
    weights: list[Literal["bf16", "fp8"]] | None = Field(
        None, description="Weight precisions; each maps to the shipped checkpoint of the model in it.")
    routers: list[str] | None = Field(None, description="Routers (default: kv when the trace has hashes, "
                                      "else round_robin).")
    agg: AggSpace | None = Field(default_factory=AggSpace, description="Agg fleets (null: none).")
    disagg: DisaggSpace | None = Field(default_factory=DisaggSpace, description="Disagg fleets (null: none).")
    planner: list[PlannerFleet] = Field(default_factory=list, description="Planner-managed fleets to compare.")
    screen_s: float | None = Field(
        600.0, ge=0, description="Screen on a window this long (the one closest to the whole trace's mean "
        "token rate) before confirming finalists on the whole trace; 0 or null: no screening.")


@dataclass(frozen=True)
class Deployment:
    """One candidate. ``prefill``/``decode`` are None for agg; ``planner`` indexes ``SearchSpace.planner``."""

    gpu: str
    tp: int
    weights: str
    model: str
    router: str
    topology: Literal["agg", "disagg"]
    workers: int = 0  # agg workers at start
    prefill: int = 0
    decode: int = 0
    planner: int | None = None
    planner_config: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def gpus(self) -> int:
        """GPUs provisioned (at start, for a planner fleet)."""
        n = self.workers if self.topology == "agg" else self.prefill + self.decode
        return n * self.tp

    def cost_per_hour(self, prices: dict[str, GpuPrice]) -> float:
        return self.gpus * price_of(prices, self.gpu).usd_per_hour

    def label(self) -> str:
        hw = f"{get_gpu(self.gpu).label} {self.weights} TP{self.tp}"
        fleet = f"agg ×{self.workers}" if self.topology == "agg" else f"disagg {self.prefill}P+{self.decode}D"
        if self.planner is not None:
            fleet = f"planner#{self.planner} {self.topology} (start {fleet.split(' ', 1)[1]})"
        return f"{hw} · {fleet} · {self.router}"

    def short_label(self) -> str:
        """For table rows: ``H100 fp8 TP1 agg×3 rr``."""
        gpu = get_gpu(self.gpu).label.split(" ")[0]
        fleet = f"agg×{self.workers}" if self.topology == "agg" else f"{self.prefill}P+{self.decode}D"
        router = {"round_robin": "rr", "random": "rand"}.get(self.router, self.router)
        planner = f" planner#{self.planner}" if self.planner is not None else ""
        return f"{gpu} {self.weights} TP{self.tp} {fleet} {router}{planner}"

    def engine_args(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` with this deployment's hardware (our names; Dynamo's aic_* names in ``base`` chose the AIC
        perf model, which is kept explicitly)."""
        args = {k: v for k, v in base.items() if k not in HARDWARE_KEYS}
        if parse_engine_args(base, source="--extra-engine-args").aic_selected_by_dynamo_names:
            args["perf_model"] = "aic"
        return {**args, "gpu": self.gpu, "model": self.model, "tp": self.tp}

    def run_values(self, base_args: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
        """The ``RunConfig`` values of this deployment (``common``: trace, SLA, seed ...)."""
        v: dict[str, Any] = {**common, "router": self.router}
        args = self.engine_args(base_args)
        if self.topology == "agg":
            v.update(extra_engine_args=args, num_workers=self.workers)
        else:
            v.update(prefill_engine_args=args, decode_engine_args=args, num_prefill_workers=self.prefill,
                     num_decode_workers=self.decode)
        if self.planner_config is not None:
            v["planner_config"] = self.planner_config
        return v


@dataclass(frozen=True)
class Line:
    """Deployments differing only in one count, cheapest first (see the module docstring). ``group`` names the
    (GPU, TP, weights, router, topology); ``row`` is the prefill count's index in a disagg group (0 in agg), so
    a point of the group is (row, index along the line)."""

    group: tuple[Any, ...]
    row: int
    points: tuple[Deployment, ...]


def load_space(path: Path | None) -> SearchSpace:
    if path is None:
        return SearchSpace()
    if not path.is_file():
        raise InputError(f"--space {path}: no such file.")
    raw = read_mapping_file(path, "--space")
    try:
        return SearchSpace.model_validate(raw)
    except ValidationError as exc:
        raise InputError(format_validation_error(exc, f"--space {path}", sorted(SearchSpace.model_fields))) from None


def counts(value: list[int] | str, where: str) -> list[int]:
    """Sorted, distinct, positive worker counts from a list or an 'a..b' range."""
    raw: list[Any] = list(parse_range(value, where)) if isinstance(value, str) else list(value)
    if not raw or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in raw):
        raise InputError(f"{where}: worker counts must be integers >= 1 (got {value!r}).")
    vals = [int(v) for v in raw]
    if len(set(vals)) != len(vals):
        raise InputError(f"{where}: a count appears twice (got {value!r}).")
    return sorted(vals)


def model_for_weights(model_name: str, weights: str) -> str:
    """The shipped checkpoint of ``model_name``'s architecture with ``weights`` precision (e.g. Llama-3.1-8B
    BF16 → nvidia/Llama-3.1-8B-Instruct-FP8)."""
    spec = get_model(model_name)
    if spec.weight_dtype == weights:
        return model_name
    for name, other in MODELS.items():
        if other.weight_dtype == weights and _architecture(other) == _architecture(spec):
            return name
    raise InputError(f"--space weights: no {weights} checkpoint of {spec.name} is known to the perf models; "
                     f"known models: {', '.join(sorted(MODELS))}. Drop '{weights}' from weights.")


def _architecture(m: ModelSpec) -> tuple[Any, ...]:
    return (m.num_layers, m.hidden_size, m.num_attention_heads, m.num_kv_heads, m.head_dim, m.intermediate_size,
            m.vocab_size, m.num_experts, m.num_experts_per_tok, m.moe_intermediate_size)


def expand_lines(space: SearchSpace, base_args: dict[str, Any], default_router: str, sla: tuple[float, float]
                 ) -> list[Line]:
    """Every line of the space, in a fixed order (the order of the space file's lists)."""
    from llmreplay.config import RunConfig

    base = parse_engine_args(base_args, source="--extra-engine-args")
    gpus = [get_gpu(g).name for g in (space.gpus or [base.gpu_name])]
    tps = space.tp or [base.tp_size]
    weights: list[str] = list(space.weights) if space.weights else [get_model(base.model_name).weight_dtype]
    routers = [RunConfig(router=r).router or r for r in (space.routers or [default_router])]
    lines: list[Line] = []
    for gpu in gpus:
        for tp in tps:
            for w in weights:
                model = model_for_weights(base.model_name, w)
                _check_engine(base_args, gpu, model, tp)
                for router in routers:
                    key = (gpu, tp, w, router)
                    common: dict[str, Any] = {"gpu": gpu, "tp": tp, "weights": w, "model": model, "router": router}
                    if space.agg is not None:
                        ws = counts(space.agg.workers, "--space agg.workers")
                        lines.append(Line((*key, "agg"), 0, tuple(
                            Deployment(**common, topology="agg", workers=n) for n in ws)))
                    if space.disagg is not None:
                        ps = counts(space.disagg.prefill, "--space disagg.prefill")
                        ds = counts(space.disagg.decode, "--space disagg.decode")
                        for i, p in enumerate(ps):
                            lines.append(Line((*key, "disagg"), i, tuple(
                                Deployment(**common, topology="disagg", prefill=p, decode=d) for d in ds)))
                    for j, fleet in enumerate(space.planner):
                        lines.append(Line((*key, "planner", j), 0, (_planner_deployment(fleet, j, common, sla),)))
    return lines


def _planner_deployment(fleet: PlannerFleet, index: int, common: dict[str, Any], sla: tuple[float, float]
                        ) -> Deployment:
    cfg = {"ttft": sla[0], "itl": sla[1], **fleet.planner_config, "mode": fleet.mode}
    parsed, _ = parse_planner_config(cfg)
    start = max(parsed.min_endpoint, 1)
    if fleet.mode == "agg":
        return Deployment(**common, topology="agg", workers=start, planner=index, planner_config=cfg)
    return Deployment(**common, topology="disagg", prefill=start, decode=start, planner=index, planner_config=cfg)


def _check_engine(base_args: dict[str, Any], gpu: str, model: str, tp: int) -> None:
    """Fail before any replay on engine args that no deployment of this hardware could use."""
    args: EngineArgs = parse_engine_args({**{k: v for k, v in base_args.items() if k not in HARDWARE_KEYS},
                                          "gpu": gpu, "model": model, "tp": tp}, source="--extra-engine-args")
    get_model(args.model_name).check_tp(args.tp_size)
