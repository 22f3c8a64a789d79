"""The Dynamo policy's scaling state: inventory, throughput floors, perf models, per-tick diagnostics.

Twin of ``PlannerScalingState`` (``dynamo/planner/core/state_machine.py``); the load and throughput rules that
read it live in :mod:`.load` and :mod:`.throughput`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from llmreplay.planner.dynamo import budget
from llmreplay.planner.dynamo.fpm import FpmMap
from llmreplay.planner.dynamo.perf_model import EngineLimits, EnginePerfModel
from llmreplay.planner.dynamo.settings import Capabilities, DynamoSettings


@dataclass
class WorkerCounts:
    """What the planner is told about its workers (``WorkerCounts``)."""

    ready_num_prefill: int | None = None
    ready_num_decode: int | None = None
    expected_num_prefill: int | None = None
    expected_num_decode: int | None = None
    prefill_scaling_in_progress: bool = False
    decode_scaling_in_progress: bool = False
    pending_num_prefill: int = 0
    pending_num_decode: int = 0


@dataclass
class Diagnostics:
    """Dynamo's ``TickDiagnostics``: what each tick estimated and why it decided."""

    estimated_ttft_ms: float | None = None
    estimated_itl_ms: float | None = None
    predicted_num_req: float | None = None
    predicted_isl: float | None = None
    predicted_osl: float | None = None
    predicted_kv_hit_rate: float | None = None
    engine_rps_prefill: float | None = None
    engine_rps_decode: float | None = None
    throughput_lower_bound_prefill: int = 1
    throughput_lower_bound_decode: int = 1
    load_decision_reason: str | None = None
    throughput_decision_reason: str | None = None
    load_decision_reason_prefill: str | None = None
    load_decision_reason_decode: str | None = None
    throughput_decision_reason_prefill: str | None = None
    throughput_decision_reason_decode: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class Decision:
    """Desired replica counts (None: no opinion on that component) — ``ScalingDecision``."""

    num_prefill: int | None = None
    num_decode: int | None = None


class ScalingState:
    def __init__(self, cfg: DynamoSettings, prefill: Capabilities | None, decode: Capabilities) -> None:
        self.cfg = cfg
        self.caps_prefill, self.caps_decode = prefill, decode
        self.is_agg = cfg.mode == "agg"
        self.models: dict[str, EnginePerfModel] = {}
        if not cfg.easy:
            roles = {"agg": decode} if self.is_agg else {"prefill": prefill, "decode": decode}
            for name, caps in roles.items():
                assert caps is not None
                role = "aggregated" if name == "agg" else name
                limits = EngineLimits(caps.max_num_batched_tokens, caps.max_num_seqs, caps.max_kv_tokens)
                self.models[name] = EnginePerfModel(role, limits, cfg.max_num_fpm_samples, cfg.load_min_observations)
        self.num_p = 0
        self.num_d = 0
        self.expected_p: int | None = None
        self.expected_d: int | None = None
        self.p_in_progress = False
        self.d_in_progress = False
        self.pending_p = 0
        self.pending_d = 0
        self.lower_bound_p = 1
        self.lower_bound_d = 1
        self.last_kv_hit_rate: float | None = None
        self.diag = Diagnostics()

    # ------------------------------------------------------------------ per tick
    def begin_tick(self) -> None:
        self.diag = Diagnostics()

    def diagnostics(self) -> Diagnostics:
        self.diag.throughput_lower_bound_prefill = self.lower_bound_p
        self.diag.throughput_lower_bound_decode = self.lower_bound_d
        return self.diag

    def observe_worker_counts(self, c: WorkerCounts) -> None:
        if c.ready_num_prefill is not None:
            self.num_p = c.ready_num_prefill
        if c.ready_num_decode is not None:
            self.num_d = c.ready_num_decode
        self.expected_p, self.expected_d = c.expected_num_prefill, c.expected_num_decode
        self.p_in_progress, self.d_in_progress = c.prefill_scaling_in_progress, c.decode_scaling_in_progress
        self.pending_p, self.pending_d = c.pending_num_prefill, c.pending_num_decode

    def observe_fpm(self, prefill: FpmMap | None, decode: FpmMap | None) -> None:
        """Every FPM of the tick tunes the role's perf model, in (worker id, dp rank) order."""
        if self.cfg.easy:
            return
        if self.is_agg:
            if decode:
                self.models["agg"].observe([decode[k] for k in sorted(decode)])
            return
        if prefill:
            self.models["prefill"].observe([prefill[k] for k in sorted(prefill)])
        if decode:
            self.models["decode"].observe([decode[k] for k in sorted(decode)])

    def observe_kv_hit_rate(self, rate: float | None) -> None:
        if rate is not None and rate == rate:
            self.last_kv_hit_rate = rate

    # ------------------------------------------------------------------ inventory rules
    def pending(self, component: str) -> int:
        return self.pending_p if component == "prefill" else self.pending_d

    def scaling_in_progress(self, component: str) -> bool:
        """A role is still moving: flagged, or its ready count differs from the count last asked for."""
        if component == "prefill":
            return self.p_in_progress or (self.expected_p is not None and self.expected_p != self.num_p)
        return self.d_in_progress or (self.expected_d is not None and self.expected_d != self.num_d)

    def load_scaling_blocked(self, component: str) -> bool:
        """``_load_scaling_blocked``: while scaling is in progress the load loop only observes."""
        return self.scaling_in_progress(component) and not (self.pending_p or self.pending_d)

    @staticmethod
    def fpm_covers_workers(fpms: FpmMap, workers: int) -> bool:
        """``_reconcile_fpm_worker_count``: one FPM per ready worker and dp rank, or no decision."""
        ranks: dict[str, set[int]] = {}
        for wid, dp in fpms:
            ranks.setdefault(wid, set()).add(dp)
        if len(ranks) != workers:
            return False
        sizes = {len(v) for v in ranks.values()}
        if len(sizes) > 1:
            return False
        return len(fpms) == workers * (sizes.pop() if sizes else 1)

    # ------------------------------------------------------------------ GPU budget
    def _caps(self, component: str) -> Capabilities | None:
        return self.caps_prefill if component == "prefill" else self.caps_decode

    def guard_single(self, desired: int, component: str, *, min_gpus: int | None = None) -> tuple[int, str | None]:
        """``_guard_single_throughput_budget``; ``min_gpus`` −1 fits only the ceiling (throughput floors)."""
        caps = self._caps(component)
        if caps is None:
            return desired, None
        current = self.num_p if component == "prefill" else self.num_d
        return budget.guard_single(current, desired, caps.num_gpu,
                                   self.cfg.min_gpu_budget if min_gpus is None else min_gpus,
                                   self.cfg.max_gpu_budget, self.cfg.min_endpoint_for(component))

    def _gpus(self) -> tuple[int, int] | None:
        if self.caps_prefill is None:
            return None
        return self.caps_prefill.num_gpu, self.caps_decode.num_gpu

    def fit_disagg_ceiling(self, num_p: int, num_d: int) -> tuple[int, int]:
        """``_fit_disagg_throughput_ceiling``: fit a throughput-lifted pair under the GPU ceiling only."""
        gpus = self._gpus()
        if gpus is None:
            return num_p, num_d
        p_min, d_min = self.cfg.min_endpoint_for("prefill"), self.cfg.min_endpoint_for("decode")
        if self.num_p < p_min or self.num_d < d_min:
            return budget.clamp_pair(max(num_p, p_min), max(num_d, d_min), *gpus, -1, self.cfg.max_gpu_budget,
                                     p_min, d_min)
        return budget.fit_pair(self.num_p, self.num_d, num_p, num_d, *gpus, -1, self.cfg.max_gpu_budget, p_min, d_min)

    def guard_disagg(self, num_p: int, num_d: int) -> tuple[int, int, str | None]:
        """``_apply_disagg_scaling_budget``."""
        gpus = self._gpus()
        if gpus is None:
            return num_p, num_d, None
        p_min, d_min = self.cfg.min_endpoint_for("prefill"), self.cfg.min_endpoint_for("decode")
        lo, hi = self.cfg.min_gpu_budget, self.cfg.max_gpu_budget
        if self.num_p < p_min or self.num_d < d_min:
            p, d = budget.clamp_pair(max(num_p, p_min), max(num_d, d_min), *gpus, lo, hi, p_min, d_min)
            return p, d, budget.RECONCILE
        return budget.guard_pair(self.num_p, self.num_d, num_p, num_d, *gpus, lo, hi, p_min, d_min)

    # ------------------------------------------------------------------ start-up (pending workers)
    @staticmethod
    def startup_reduction(target: int | None, ready: int, pending: int) -> int | None:
        """While workers start, only a cut below ready + pending is an action."""
        if target is None or target > ready or target >= ready + pending:
            return None
        return target
