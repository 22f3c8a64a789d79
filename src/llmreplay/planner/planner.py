"""The planner's tick state machine (SPEC §5), running on the simulated clock.

Every tick (period = gcd of the enabled intervals):

1. observe: read the FPM records since the last tick (they train the regressions) and the traffic counters;
2. throughput tick (every ``throughput_adjustment_interval``): forecast next interval's rate, ISL and OSL,
   compute one engine's capacity within the SLA, and set the **floor** = ceil(rate / engine rps);
3. load tick (every ``load_adjustment_interval``): from each worker's load over the interval, estimate TTFT
   and ITL through the regression; propose +1 if the SLA breaks, −1 if one fewer worker would still meet it
   with margin (or static thresholds for the non-SLA targets);
4. decide per component: ``max(load decision or current, min_endpoint, floor)``, capped by the GPU budget;
   apply it (start workers, which serve after ``startup_time``; or drain the newest).

Policy ``llmreplay`` (this planner; Dynamo's own decisions are the ``dynamo`` policy) adds to the floor of
step 2, each in the tick diagnostics: a *queueing floor* for heavy-tailed prompts (``queue_floor_*``), a *burst
floor* for the peak arrival rate of the last minutes (``burst_floor_*``), and a *surplus credit* that lowers
the floors while the SLA attainment seen so far has margin (``served_attainment``, ``surplus_credit``), but
not below two workers; a
floor falls only after two throughput intervals ask for less, and a scale-up waits for a breach to last two
load ticks (``breach_unconfirmed``). See docs/planner.md.

Throughput runs before load on a combined tick, so the load decision sees the new floor. Every tick is
recorded (:class:`TickDiagnostics`) for the report.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from llmreplay.cluster.pool import Pool
from llmreplay.cluster.worker import State
from llmreplay.planner import capacity as cap
from llmreplay.planner.bootstrap import bootstrap_agg, bootstrap_decode, bootstrap_prefill
from llmreplay.planner.config import TARGET_THRESHOLDS, PlannerConfig
from llmreplay.planner.observe import FpmCursor, TrafficWindow, WorkerLoad, summarize
from llmreplay.planner.predictors import Predictor, make_predictor
from llmreplay.planner.regression import Regression, agg_regression, decode_regression, prefill_regression
from llmreplay.sim.idle import cycle_length, plain
from llmreplay.units import NS_PER_S, s_to_ns

#: load ticks a scale-down looks back over: n−1 workers must have met sensitivity × SLA at the peak load of
#: each of them. Dynamo judges one snapshot, so a lull of one tick removes a worker that the next burst needs
#: back (flapping); a look-back longer than the reversal window (3 load intervals) prevents that.
SCALE_DOWN_LOOKBACK = 6
#: FPM records per worker per tick offered to the regression (it retains 64 points over its whole range)
REGRESSION_SAMPLES_PER_TICK = 8
#: The queueing floor (our addition to Dynamo's throughput floor). Dynamo sizes the fleet from the capacity
#: of an engine serving the *mean* request; with heavy-tailed prompts the SLA is lost in the tail instead: a
#: request routed behind a long prefill waits for it. A worker spends a share (λ/n)·E[(S − t)⁺] of its time
#: with more than t seconds of one prefill still to go (S: a prompt's prefill time from the fitted
#: regression); a request arriving then misses a TTFT SLA of t / QUEUE_HEADROOM. The floor keeps that share
#: at or below QUEUE_MISS_BUDGET.
QUEUE_HEADROOM = 0.4
QUEUE_MISS_BUDGET = 0.075
#: the tail is sampled by a few long prompts per interval: E[(S − t)⁺] is averaged over intervals with this
#: weight on the past (about five intervals of memory)
QUEUE_TAIL_DECAY = 0.8
#: The burst floor (our addition): arrivals come in bursts of seconds that a minute's mean rate hides, and a
#: request routed at a burst waits in its worker's queue however fast the planner reacts afterwards. The fleet
#: keeps enough engines for the highest load-interval arrival rate of the last BURST_LOOKBACK_S seconds.
BURST_LOOKBACK_S = 240.0
#: share of an engine's steady-state capacity (Dynamo's engine rps) a burst may use: a burst fills prefill
#: queues, and the decode steps that share a step with long prefill chunks break the ITL SLA
BURST_UTILIZATION = 0.9
#: load ticks in a row an SLA breach must last before a scale-up: one long prompt breaks the estimate for a
#: tick whatever the fleet, and a worker added for it is removed a minute later (two changes for nothing)
SCALE_UP_PERSISTENCE = 2
#: Surplus credit (our addition): the floors guard the SLA from a model; the frontend sees what it achieved.
#: While the share of finished requests within the targets is at least SURPLUS_GOAL + a margin (over
#: SURPLUS_MIN_REQUESTS or more), every floor is lowered by a worker per margin passed: the surplus is spent,
#: never borrowed.
SURPLUS_GOAL = 0.9
SURPLUS_MARGINS = (0.008, 0.03)  # one worker off per margin passed
SURPLUS_MIN_REQUESTS = 500
#: The credit never takes a floor of two or more workers below this. Its risk grows as the fleet shrinks: under
#: round robin each of n workers sees the arrivals' squared CV divided by n and 1/n of the rate, so Kingman's
#: queueing delay ρ/(1−ρ)·(c²/n + c_s²)/2 grows most from 2 workers to 1 (×6.7 at the bursty trace's 5.8
#: req/s, CV 7.5, engines of ~10 req/s; ×2.5 from 3 to 2). Without this bound a second credit worker took the
#: bursty trace's fleet to 1 between bursts and back up to 5 after them (90.6 %, 1.38 GPU-h, 31 changes; 2
#: fixed workers: 95.5 %, 0.98 GPU-h).
SURPLUS_MIN_FLEET = 2
#: throughput intervals the floor remembers: it falls only after this many intervals in a row asked for less
FLOOR_MEMORY = 2
REASON_PRIORITY = {"scale_up": 4, "scale_down_capped_by_throughput": 3, "scale_down": 2, "no_change": 1}


@dataclass
class TickDiagnostics:
    """One tick, as the report draws it (null where not computed on that tick)."""

    t_s: float
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
    queue_floor_prefill: int | None = None  # workers the queueing floor asks for (see QUEUE_MISS_BUDGET)
    queue_floor_decode: int | None = None
    burst_floor_prefill: int | None = None  # engines for the peak arrival rate of the look-back (BURST_LOOKBACK_S)
    burst_floor_decode: int | None = None
    served_attainment: float | None = None  # finished requests within the targets so far (surplus credit)
    surplus_credit: int | None = None  # workers taken off every floor (one per SURPLUS_MARGINS passed)
    max_batch: int | None = None
    reason_load: str | None = None
    reason_load_prefill: str | None = None
    reason_load_decode: str | None = None
    reason_throughput: str | None = None
    reason_throughput_prefill: str | None = None
    reason_throughput_decode: str | None = None
    #: a collapsed idle stretch (:mod:`llmreplay.sim.idle`): this entry stands for ``count`` ticks, at ``t_s``
    #: and every ``every_s`` after it (None: one tick)
    count: int | None = None
    every_s: float | None = None


def stretch_ticks(ticks: list[TickDiagnostics], cycles: int, cycle_ticks: int, period_ns: int) -> None:
    """The last ``cycle_ticks`` entries repeat ``cycles`` more times, one cycle apart (a collapsed idle
    stretch)."""
    every = round(cycle_ticks * period_ns / NS_PER_S, 9)
    for d in ticks[-cycle_ticks:]:
        assert d.count is None, "a tick entry is stretched once"
        d.count, d.every_s = 1 + cycles, every


def tick_dicts(ticks: list[TickDiagnostics]) -> list[dict[str, Any]]:
    """The ticks as the report's dicts: ``dataclasses.asdict`` without its deep copy, which a run's ~700 ticks
    of scalar fields paid field by field (a tenth of the planner's own time)."""
    names = [f.name for f in fields(TickDiagnostics)]
    return [{n: getattr(t, n) for n in names} for t in ticks]


def count_decisions(ticks: list[TickDiagnostics]) -> dict[str, dict[str, int]]:
    """Ticks per load and throughput reason (a collapsed entry counts for every tick it stands for)."""
    decisions: dict[str, dict[str, int]] = {"load": {}, "throughput": {}}
    for t in ticks:
        for kind, reason in (("load", t.reason_load), ("throughput", t.reason_throughput)):
            if reason:
                decisions[kind][reason] = decisions[kind].get(reason, 0) + (t.count or 1)
    return decisions


@dataclass
class ScalingEvent:
    t_s: float
    component: str
    from_: int
    to: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": self.t_s, "component": self.component, "from": self.from_, "to": self.to,
                "reason": self.reason}


def aggregate_reason(reasons: list[str | None]) -> str | None:
    """Combine per-component reasons by priority scale_up > capped > scale_down > no_change; otherwise the
    first non-null reason (e.g. no_fpm_data)."""
    known = [r for r in reasons if r is not None]
    if not known:
        return None
    ranked = [r for r in known if r in REASON_PRIORITY]
    if ranked:
        return max(ranked, key=lambda r: REASON_PRIORITY[r])
    return known[0]


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(float(x), nd)


@dataclass
class _Component:
    """One scaled component (agg workers, or a disagg side)."""

    name: str  # "decode" for agg (its count is reported as replicas_decode), or "prefill"/"decode"
    role: str  # "agg", "prefill" or "decode"
    pool: Pool
    regression: Regression
    gpus: int
    floor: int = 0
    fpm_observations: int = 0
    #: per load tick: cluster totals (queued prefill, decode requests, decode KV, prefill tokens/step) at
    #: their interval peaks; a scale-down must fit every entry (see SCALE_DOWN_LOOKBACK)
    history: deque[tuple[float, float, float, float]] = field(
        default_factory=lambda: deque(maxlen=SCALE_DOWN_LOOKBACK))
    floors: deque[int] = field(default_factory=lambda: deque(maxlen=FLOOR_MEMORY))
    tail_excess_s: float = 0.0  # decayed sums of E[(S − t)⁺] numerator and request count (queueing floor)
    tail_requests: float = 0.0
    rates: deque[float] = field(default_factory=deque)  # arrival rate of each load interval of the look-back
    engine_rps: float = 0.0  # last throughput tick's engine capacity (burst floor)
    burst_floor: int = 0
    breaches: int = 0  # load ticks in a row whose estimate broke the SLA (SCALE_UP_PERSISTENCE)

    def current(self) -> int:
        """Workers counted by the planner: starting + active (draining ones are leaving)."""
        return self.pool.count(State.STARTING, State.ACTIVE)

    def starting(self) -> int:
        return self.pool.count(State.STARTING)


@dataclass
class Planner:
    cfg: PlannerConfig
    pools: dict[str, Pool]
    granularity: int = 8
    ticks: list[TickDiagnostics] = field(default_factory=list)
    events: list[ScalingEvent] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ticks_before_arrivals = False  # a tick sees the arrivals of its instant

    def __post_init__(self) -> None:
        t_init = time.perf_counter()  # wall time of bootstrap + ticks, for the report's sim block
        if "agg" in self.pools:
            pool = self.pools["agg"]
            self.components = [_Component("decode", "agg", pool, agg_regression(), pool.spec.gpus_per_worker)]
        else:
            self.components = [
                _Component("prefill", "prefill", self.pools["prefill"], prefill_regression(),
                           self.pools["prefill"].spec.gpus_per_worker),
                _Component("decode", "decode", self.pools["decode"], decode_regression(),
                           self.pools["decode"].spec.gpus_per_worker),
            ]
        self.cursor = FpmCursor()
        self.window = TrafficWindow()  # since the last load tick
        self.tp_window = TrafficWindow()  # since the last throughput tick
        self.predictors: dict[str, Predictor] = {k: make_predictor(self.cfg.load_predictor or "constant")
                                                 for k in ("rps", "isl", "osl")}
        load_ns = s_to_ns(self.cfg.load_adjustment_interval)
        tp_ns = s_to_ns(self.cfg.throughput_adjustment_interval)
        periods = ([load_ns] if self.cfg.enable_load_scaling else []) + (
            [tp_ns] if self.cfg.enable_throughput_scaling else [])
        self.load_ns, self.tp_ns = load_ns, tp_ns
        self.period_ns = math.gcd(*periods) if periods else 0
        self.last_tick_ns = 0
        self.last_load_ns = 0
        self.last_tp_ns = 0
        self.budget_warned = False
        if self.cfg.optimization_target == "sla" or self.cfg.enable_throughput_scaling:
            for c in self.components:
                BOOTSTRAP[c.role](c.regression, c.pool.spec, self.granularity)
        self.handoffs_waiting = 0  # disagg: prefilled requests waiting for decode KV at the last tick
        self.credit = 0
        self.served = 0  # finished requests, and those within the SLA targets (the surplus credit)
        self.served_good = 0
        self.wall_s = time.perf_counter() - t_init

    # ------------------------------------------------------------------ hooks from the replay
    def arrived(self, isl: int, osl: int) -> None:
        self.window.arrive(isl, osl)
        self.tp_window.arrive(isl, osl)

    def finished(self, ttft_ms: float, itl_ms: float | None, isl: int, cached: int, osl: int = 0) -> None:
        self.window.finish(ttft_ms, itl_ms, isl, cached)
        self.tp_window.finish(ttft_ms, itl_ms, isl, cached)
        self.served += 1
        self.served_good += ttft_ms <= self.cfg.ttft and (itl_ms is None or itl_ms <= self.cfg.itl)

    # ------------------------------------------------------------------ the tick
    def tick(self, now: int, start_worker: Any, handoffs_waiting: int = 0) -> None:
        """Run one tick at ``now``; ``start_worker(pool, now)`` provisions a worker (the replay schedules its
        readiness after ``startup_time``); ``handoffs_waiting``: prefilled requests a disagg decode pool has no
        room for (a live planner sees them as queued decode work)."""
        t0 = time.perf_counter()
        self._tick(now, start_worker, handoffs_waiting)
        self.wall_s += time.perf_counter() - t0

    def _tick(self, now: int, start_worker: Any, handoffs_waiting: int) -> None:
        self.handoffs_waiting = handoffs_waiting
        for c in self.components:
            for w in c.pool.workers:
                if w.state != State.STOPPED:
                    w.engine.sync(now)
        d = TickDiagnostics(t_s=round(now / NS_PER_S, 6))
        tp_due = self.cfg.enable_throughput_scaling and now - self.last_tp_ns >= self.tp_ns
        load_due = self.cfg.enable_load_scaling and now - self.last_load_ns >= self.load_ns
        loads = self._observe(now)
        win = self.window
        span_s = (now - self.last_load_ns) / NS_PER_S if load_due else (now - self.last_tick_ns) / NS_PER_S
        d.observed_rps = _r(win.arrivals / span_s) if span_s > 0 else None
        d.observed_isl = _r(win.mean_isl)
        d.observed_osl = _r(win.mean_osl)
        d.observed_ttft_ms = _r(win.mean_ttft_ms)
        d.observed_itl_ms = _r(win.mean_itl_ms)
        if tp_due:
            self._throughput(now, d)
            self._surplus(d)
        load_decisions: dict[str, int | None] = {}
        if load_due:
            for c in self.components:
                self._burst(c, win.arrivals / span_s if span_s > 0 else 0.0, d)
                load_decisions[c.name] = self._load(c, loads[c.name], now, d)
            d.reason_load = aggregate_reason([d.reason_load_prefill, d.reason_load_decode])
        if tp_due or load_due:
            for c in self.components:
                self._apply(c, load_decisions.get(c.name), now, d, start_worker)
        if self.cfg.enable_throughput_scaling:
            d.surplus_credit = self.credit
        for c in self.components:
            setattr(d, f"replicas_{c.name}", c.current())
            setattr(d, f"floor_{c.name}", self._floor(c) if self.cfg.enable_throughput_scaling else None)
        if load_due:
            self.window = TrafficWindow()
            self.last_load_ns = now
        if tp_due:
            self.tp_window = TrafficWindow()
            self.last_tp_ns = now
        if not self.cfg.enable_load_scaling:
            self.window = TrafficWindow()
        self.last_tick_ns = now
        self.ticks.append(d)

    # ------------------------------------------------------------------ idle stretches (llmreplay.sim.idle)
    def ticks_one_by_one(self) -> str | None:
        """Why idle ticks can never be collapsed: never here (every predictor's state settles or is windowed)."""
        return None

    @property
    def cycle_ticks(self) -> int:
        intervals = ([self.load_ns] if self.cfg.enable_load_scaling else []) + (
            [self.tp_ns] if self.cfg.enable_throughput_scaling else [])
        return cycle_length(self.period_ns, [float(i) for i in intervals])

    def idle_fingerprint(self, now: int) -> Hashable | None:
        """Everything a later tick reads, relative to ``now``: each component's floors, look-backs, decay sums
        and regression; the traffic windows; the predictors' forecasting state; time since each enabled loop
        last ran; the unread FPM records; the counters the surplus credit and the budget warning read."""
        predictors = tuple(p.fingerprint() for p in self.predictors.values())
        if any(p is None for p in predictors):
            return None
        unread = tuple(len(w.view.fpm) - self.cursor.seen.get((w.pool_name, w.id), 0)
                       for c in self.components for w in c.pool.workers)
        since = (now - self.last_tick_ns,
                 now - self.last_load_ns if self.cfg.enable_load_scaling else None,
                 now - self.last_tp_ns if self.cfg.enable_throughput_scaling else None)
        return (tuple(plain(c, frozenset({"pool"})) for c in self.components), plain(self.window),
                plain(self.tp_window), predictors, since, unread, self.handoffs_waiting, self.credit, self.served,
                self.served_good, self.budget_warned, len(self.warnings), len(self.events))

    def collapse(self, cycles: int, cycle_ticks: int, period_ns: int) -> None:
        span = cycles * cycle_ticks * period_ns
        self.last_tick_ns += span
        if self.cfg.enable_load_scaling:
            self.last_load_ns += span
        if self.cfg.enable_throughput_scaling:
            self.last_tp_ns += span
        stretch_ticks(self.ticks, cycles, cycle_ticks, period_ns)

    def _observe(self, now: int) -> dict[str, list[WorkerLoad]]:
        out: dict[str, list[WorkerLoad]] = {}
        window = max(now - self.last_load_ns, 1)
        for c in self.components:
            loads: list[WorkerLoad] = []
            new_obs = 0
            for w in c.pool.workers:
                if w.state == State.STOPPED and self.cursor.read_all(w):
                    continue  # a worker gone for good, every record already read
                rec = self.cursor.new_records(w)
                for x, y in _samples(c.role, rec):
                    c.regression.add(x, y)
                    new_obs += 1
                if w.state == State.ACTIVE:
                    s = summarize(w, rec, window)
                    if s is not None:
                        loads.append(s)
                    else:
                        loads.append(_idle(w.id))
            if new_obs:
                c.fpm_observations += new_obs
                c.regression.fit()
            out[c.name] = loads
        return out

    # ------------------------------------------------------------------ throughput scaling
    def _throughput(self, now: int, d: TickDiagnostics) -> None:
        win = self.tp_window
        span_s = (now - self.last_tp_ns) / NS_PER_S
        if win.arrivals:
            self.predictors["rps"].add(win.arrivals / span_s)
            self.predictors["isl"].add(win.mean_isl)
            self.predictors["osl"].add(win.mean_osl)
        else:
            self.predictors["rps"].add(0.0)
        rps = self.predictors["rps"].predict()
        isl = self.predictors["isl"].predict()
        osl = self.predictors["osl"].predict()
        d.predicted_rps, d.predicted_isl, d.predicted_osl = _r(rps), _r(isl), _r(osl)
        all_ready = all(c.regression.ready for c in self.components)
        for c in self.components:
            reason: str
            if rps is None or isl is None or osl is None:
                reason = "no_traffic_data"
            elif not c.regression.ready:
                reason = "model_not_ready"
            elif not all_ready:
                reason = "partner_not_ready"  # disagg: sizing one side alone would unbalance the pair
            else:
                engine = self._engine_capacity(c, isl, osl, win.hit_rate)
                side = "prefill" if c.role == "prefill" else "decode"
                setattr(d, f"engine_rps_{side}", _r(engine.rps))
                if c.role != "prefill":
                    d.max_batch = engine.batch
                c.engine_rps = engine.rps
                if engine.rps > 0:
                    floor = max(self.cfg.min_endpoint, math.ceil(rps / engine.rps))
                    if c.role != "decode" and win.isls:
                        queue = self._queue_floor(c, rps, win.isls, win.hit_rate)
                        setattr(d, f"queue_floor_{side}", queue)
                        floor = max(floor, queue)
                    c.floors.append(floor)
                    c.floor = max(c.floors)
                reason = "set_lower_bound" if self.cfg.enable_load_scaling else "scale"
            setattr(d, f"reason_throughput_{c.name}", reason)
        d.reason_throughput = aggregate_reason([d.reason_throughput_prefill, d.reason_throughput_decode])

    def _surplus(self, d: TickDiagnostics) -> None:
        """Spend an SLA surplus: workers off every floor while the attainment so far has margin."""
        if self.served < SURPLUS_MIN_REQUESTS:
            return
        attained = self.served_good / self.served
        self.credit = sum(attained >= SURPLUS_GOAL + m for m in SURPLUS_MARGINS)
        d.served_attainment, d.surplus_credit = _r(attained), self.credit

    def _floor(self, c: _Component) -> int:
        """The floor the decision keeps: the highest of the throughput, queueing and burst floors, less the
        surplus credit, which never goes below SURPLUS_MIN_FLEET workers."""
        floor = max(c.floor, c.burst_floor)
        return max(floor - self.credit, min(floor, SURPLUS_MIN_FLEET))

    def _burst(self, c: _Component, rate: float, d: TickDiagnostics) -> None:
        """Record this load interval's arrival rate; the burst floor covers the look-back's peak."""
        c.rates.append(rate)
        while len(c.rates) * self.cfg.load_adjustment_interval > BURST_LOOKBACK_S:
            c.rates.popleft()
        if self.cfg.enable_throughput_scaling and c.engine_rps > 0:
            c.burst_floor = max(self.cfg.min_endpoint,
                                math.ceil(max(c.rates) / (c.engine_rps * BURST_UTILIZATION)))
            setattr(d, f"burst_floor_{'prefill' if c.role == 'prefill' else 'decode'}", c.burst_floor)

    def _queue_floor(self, c: _Component, rps: float, isls: list[int], hit_rate: float) -> int:
        """Workers keeping the share of requests that arrive behind a long prefill within QUEUE_MISS_BUDGET."""
        reg = c.regression
        mbt = c.pool.spec.args.max_num_batched_tokens
        if c.role == "prefill":
            def step(t: float, ctx: float) -> float:
                return reg.predict(t, t * (ctx + t / 2))
        else:
            def step(t: float, ctx: float) -> float:
                return reg.predict(t, 0.0, t * (ctx + t / 2))
        keep = 1.0 - min(hit_rate, 0.95)
        t = QUEUE_HEADROOM * self.cfg.ttft / 1000.0
        c.tail_excess_s = QUEUE_TAIL_DECAY * c.tail_excess_s + sum(
            max(0.0, cap.prefill_time(isl * keep, mbt, step) - t) for isl in isls)
        c.tail_requests = QUEUE_TAIL_DECAY * c.tail_requests + len(isls)
        excess = c.tail_excess_s / c.tail_requests
        return max(self.cfg.min_endpoint, math.ceil(rps * excess / QUEUE_MISS_BUDGET))

    def _engine_capacity(self, c: _Component, isl: float, osl: float, hit_rate: float) -> cap.Capacity:
        spec = c.pool.spec
        reg = c.regression
        uncached = isl * (1.0 - min(hit_rate, 0.95))
        mbt = spec.args.max_num_batched_tokens
        kv_tokens = spec.num_blocks * spec.args.block_size
        if c.role == "prefill":
            return cap.prefill_capacity(uncached, mbt, lambda t, ctx: reg.predict(t, t * (ctx + t / 2)))
        if c.role == "decode":
            return cap.decode_capacity(self.cfg.itl / 1000.0, isl, osl, kv_tokens, spec.args.max_num_seqs,
                                       lambda n, k: reg.predict(n, k))
        return cap.agg_capacity(self.cfg.itl / 1000.0, uncached, osl, mbt, kv_tokens, spec.args.max_num_seqs,
                                lambda p, k, prompt: reg.predict(p, k, p * prompt / 2))

    # ------------------------------------------------------------------ load scaling
    def _load(self, c: _Component, loads: list[WorkerLoad], now: int, d: TickDiagnostics) -> int | None:
        key = f"reason_load_{c.name}"
        n = c.current()
        if not loads:
            setattr(d, key, "no_fpm_data")
            return None
        if c.starting():
            # a worker is still starting and will take its share of this load: only observe (as Dynamo does);
            # otherwise each tick of the start-up adds one more worker for the same overload
            setattr(d, key, "scaling_in_progress")
            return None
        if self.cfg.optimization_target != "sla":
            return self._threshold_load(c, loads, n, d)
        if not c.regression.ready or c.fpm_observations < self.cfg.load_min_observations:
            setattr(d, key, "insufficient_data")
            return None

        spec = c.pool.spec
        mbt = spec.args.max_num_batched_tokens
        isl = self.window.mean_isl if self.window.arrivals else (self.tp_window.mean_isl or 0.0)
        prompt = 0.0 if not math.isfinite(isl) else isl  # mean prompt length: sets the attention work per chunk
        isl = prompt * (1.0 - min(self.window.hit_rate, 0.95))  # what a new request must prefill
        reg = c.regression

        role = c.role
        kv_capacity = spec.num_blocks * spec.args.block_size

        def chunk_s(chunk: float, kv: float) -> float:
            """One prefill chunk's step time (next to the decode batch's KV reads, for agg)."""
            return reg.predict(chunk, chunk * prompt / 2) if role == "prefill" else \
                reg.predict(chunk, kv, chunk * prompt / 2)

        def estimate(queue: float, n_dec: float, kv: float, prefill_per_step: float) -> tuple[float, float]:
            """(TTFT, ITL) one worker would see with this load; 0 for the one a role does not serve."""
            if role == "decode":
                return 0.0, reg.predict(n_dec, kv)
            budget = max(mbt - n_dec, 1.0) if role == "agg" else float(mbt)
            todo = queue + isl
            ttft = 0.0
            full = -1.0  # the time of a full chunk, predicted once (a long queue is many of them)
            while todo > 0:  # chunked prefill of the queue plus one new prompt (next to the decode batch)
                if todo >= budget:
                    if full < 0:
                        full = chunk_s(budget, kv)
                    ttft += full
                    todo -= budget
                else:
                    ttft += chunk_s(todo, kv)
                    todo = 0.0
            if role == "prefill":
                return ttft, 0.0
            p = min(prefill_per_step, budget)
            return ttft, reg.predict(p, kv, p * prompt / 2)

        ests = [estimate(w.queued_prefill_mean, w.decode_requests_mean, w.decode_kv_mean, w.prefill_tokens_per_step)
                for w in loads]
        ttft = sum(e[0] for e in ests) / len(ests)
        itl = sum(e[1] for e in ests) / len(ests)
        if role != "decode":
            d.est_ttft_ms = _r(ttft * 1000)
        if role != "prefill":
            d.est_itl_ms = _r(itl * 1000)
        # cluster totals of the interval at their peaks, kept for the scale-down look-back
        c.history.append((sum(w.queued_prefill_peak for w in loads), sum(w.decode_requests_peak for w in loads),
                          sum(w.decode_kv_peak for w in loads), sum(w.prefill_tokens_per_step for w in loads)))
        ttft_sla, itl_sla = self.cfg.ttft / 1000.0, self.cfg.itl / 1000.0
        starved = role == "decode" and self.handoffs_waiting > 0  # prefilled requests find no decode room
        breach = ttft > ttft_sla or itl > itl_sla or starved
        c.breaches = c.breaches + 1 if breach else 0
        if breach and c.breaches < SCALE_UP_PERSISTENCE:
            setattr(d, key, "breach_unconfirmed")
            return None
        if breach:
            setattr(d, key, "scale_up")
            return n + 1
        if n > 1 and len(c.history) == c.history.maxlen:
            # Would n-1 workers have met the SLA with margin at every peak of the look-back window?
            s = self.cfg.load_scaling_down_sensitivity / 100.0
            m = n - 1
            if all(
                t <= s * ttft_sla and i <= s * itl_sla and (role != "decode" or k / m <= s * kv_capacity)
                for (t, i), (_, _, k, _) in (
                    (estimate(q / m, r / m, k / m, p / m), (q, r, k, p)) for q, r, k, p in c.history
                )
            ):
                setattr(d, key, "scale_down")
                return n - 1
        setattr(d, key, "no_change")
        return None

    def _threshold_load(self, c: _Component, loads: list[WorkerLoad], n: int, d: TickDiagnostics) -> int | None:
        """Dynamo's static thresholds. Prefill: queued prefill tokens in units of ``max_model_len`` — or, when
        that is unset (the default, which in Dynamo means prefill never scales), of ``max_num_batched_tokens``.
        Decode: KV utilisation; agg: KV utilisation counting queued prefill tokens too."""
        key = f"reason_load_{c.name}"
        spec = c.pool.spec
        kv_tokens = spec.num_blocks * spec.args.block_size
        target = self.cfg.optimization_target
        if c.role == "prefill":
            unit = float(spec.args.max_model_len or spec.args.max_num_batched_tokens)
            if target == "load":
                up = (self.cfg.prefill_scale_up_queue_tokens or 0.0) / unit
                down = (self.cfg.prefill_scale_down_queue_tokens or 0.0) / unit
            else:
                up, down = TARGET_THRESHOLDS[target][0]
            util = [w.queued_prefill_mean / unit for w in loads]
        else:
            if target == "load":
                up = (self.cfg.decode_scale_up_kv_rate or 100.0) / 100.0
                down = (self.cfg.decode_scale_down_kv_rate or 0.0) / 100.0
            else:
                up, down = TARGET_THRESHOLDS[target][1]
            queued = (lambda w: w.queued_prefill_mean) if c.role == "agg" else (lambda w: 0.0)
            util = [(w.kv_used_blocks_mean * spec.args.block_size + queued(w)) / kv_tokens for w in loads]
        if any(u > up for u in util) or (c.role == "decode" and self.handoffs_waiting > 0):
            setattr(d, key, "scale_up")
            return n + 1
        if n > 1 and all(u < down or (down == 0.0 and u <= 0.0) for u in util):
            setattr(d, key, "scale_down")
            return n - 1
        setattr(d, key, "no_change")
        return None

    # ------------------------------------------------------------------ decision
    def _apply(self, c: _Component, load_target: int | None, now: int, d: TickDiagnostics,
               start_worker: Any) -> None:
        current = c.current()
        floor = self._floor(c) if self.cfg.enable_throughput_scaling else 0
        target = max(load_target if load_target is not None else current, self.cfg.min_endpoint, floor)
        key = f"reason_load_{c.name}"
        if load_target is not None and load_target < current <= target:
            # the scale-down was stopped: by the throughput floor (reported), or by min_endpoint (no change)
            setattr(d, key, "scale_down_capped_by_throughput" if floor >= current else "no_change")
        if self.cfg.max_gpu_budget >= 0:
            others = sum(o.current() * o.gpus for o in self.components if o is not c)
            ceiling = max(self.cfg.min_endpoint, (self.cfg.max_gpu_budget - others) // c.gpus)
            if target > ceiling:
                target = ceiling
                setattr(d, key, "capped_by_gpu_budget")
                if not self.budget_warned:
                    self.warnings.append(
                        f"max_gpu_budget {self.cfg.max_gpu_budget} bound at t={now / NS_PER_S:.0f}s: the planner "
                        f"wanted more than {ceiling} workers of {c.gpus} GPU(s)."
                    )
                    self.budget_warned = True
        if self.cfg.enable_load_scaling:
            d.reason_load = aggregate_reason([d.reason_load_prefill, d.reason_load_decode])
        if target == current:
            return
        reason = "scale_up" if target > current else "scale_down"
        self.events.append(ScalingEvent(round(now / NS_PER_S, 6), c.name if len(self.components) > 1 else "agg",
                                        current, target, reason))
        if target > current:
            for _ in range(target - current):
                start_worker(c.pool, now)
            c.history.clear()  # a scale-up restarts the look-back: the load that caused it must age out
        else:
            for _ in range(current - target):
                c.pool.drain_worker(now)

    # ------------------------------------------------------------------ report
    def report(self) -> dict[str, Any]:
        return {
            "policy": "llmreplay",
            "ticks": tick_dicts(self.ticks),
            "decisions": count_decisions(self.ticks),
            "events": [e.to_dict() for e in self.events],
            "regression": {c.name: self._regression_report(c) for c in self.components},
        }


    @staticmethod
    def _regression_report(c: _Component) -> dict[str, Any]:
        reg = c.regression
        return {"features": list(reg.features), "coef": None if reg.coef is None else [float(x) for x in reg.coef],
                "observations": c.fpm_observations, "rejected_fits": reg.rejected_fits}


BOOTSTRAP = {"agg": bootstrap_agg, "prefill": bootstrap_prefill, "decode": bootstrap_decode}


def _samples(role: str, rec: dict[str, Sequence[int]]) -> list[tuple[tuple[float, ...], float]]:
    """The regression's (features, step seconds) from a worker's new FPM records. Every record feeds the load
    summary; the regression, which keeps only max_samples points spread over its range, takes at most
    REGRESSION_SAMPLES_PER_TICK of them, evenly spaced from the newest, of those that inform this role's
    model (prefill: steps with prefill tokens; decode: pure decode steps; agg: every step)."""
    t0, t1, steps = rec["t_start_ns"], rec["t_end_ns"], rec["steps"]
    prefill_tokens, attention = rec["sum_prefill_tokens"], rec["prefill_attention"]
    kv_first, kv_last, decoding = rec["decode_kv_first"], rec["decode_kv_last"], rec["num_decode_requests"]
    count = len(t1)
    out: list[tuple[tuple[float, ...], float]] = []
    for i in range(count - 1, -1, -max(1, count // REGRESSION_SAMPLES_PER_TICK)):
        prefill = float(prefill_tokens[i])
        x: tuple[float, ...]
        if role == "agg":
            x = prefill, float((kv_first[i] + kv_last[i]) / 2), float(attention[i])
        elif role == "prefill":
            if not prefill > 0:
                continue
            x = prefill, float(attention[i])
        else:
            n = decoding[i]
            if not (prefill == 0 and n > 0):
                continue
            x = float(n), float((kv_first[i] + kv_last[i]) / 2)
        out.append((x, (t1[i] - t0[i]) / steps[i] / NS_PER_S))
    return out


def _idle(worker: int) -> WorkerLoad:
    return WorkerLoad(worker, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
