"""Synthetic traces: Poisson, bursty (gamma or on/off) and agentic multi-turn sessions; and a Mooncake writer.

Every generator draws from one ``numpy.random.default_rng(seed)`` in a fixed order, so the same arguments
give the same trace. Give either ``duration_s`` (arrivals in ``[0, duration_s)``) or ``num_requests``.

Length distributions are written ``kind:params`` (:func:`parse_dist`):

- ``fixed:N`` (or just ``N``): always N;
- ``uniform:A,B``: whole numbers from A to B, both included;
- ``normal:MEAN,STD``: rounded to whole numbers;
- ``lognormal:MU,SIGMA``: exp of a normal with mean MU and standard deviation SIGMA (numpy's parameters:
  the median is e^MU), rounded.

Every value is clipped to at least 1 token.
"""

from __future__ import annotations

import gzip
import io
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt

from llmreplay.errors import InputError
from llmreplay.fileio import atomic_open
from llmreplay.trace.model import DEFAULT_BLOCK_SIZE, I64, MAX_SPAN_S, NS_PER_S, Trace
from llmreplay.trace.transform import dense_sessions, take_rows
from llmreplay.units import s_to_ns

F64 = npt.NDArray[np.float64]
Rng = np.random.Generator

DEFAULT_ISL = "lognormal:7.5,0.8"  # median ~1,800 tokens, mean ~2,500
DEFAULT_OSL = "lognormal:5.3,0.7"  # median ~200 tokens, mean ~260
AGENTIC_STEP_ISL = "lognormal:6.4,0.6"  # tokens a turn adds (tool result or user message): mean ~720
AGENTIC_OSL = "normal:175,30"
MAX_TOKENS = 10_000_000


# ---------------------------------------------------------------------------------------------- dists
@dataclass(frozen=True)
class Dist:
    """A token-length distribution; ``sample`` returns int64 values >= 1."""

    kind: str
    params: tuple[float, ...]

    def sample(self, rng: Rng, n: int) -> I64:
        k, p = self.kind, self.params
        if k == "fixed":
            v: F64 = np.full(n, p[0], dtype=np.float64)
        elif k == "uniform":
            return rng.integers(int(p[0]), int(p[1]) + 1, size=n, dtype=np.int64).clip(1, None)
        elif k == "normal":
            v = rng.normal(p[0], p[1], size=n)
        else:
            v = rng.lognormal(p[0], p[1], size=n)
        return np.rint(np.clip(v, 1, MAX_TOKENS)).astype(np.int64)

    @property
    def mean(self) -> float:
        """The mean before clipping and rounding."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return (p[0] + p[1]) / 2
        if k == "normal":
            return p[0]
        return math.exp(p[0] + p[1] ** 2 / 2)

    def __str__(self) -> str:
        return f"{self.kind}:" + ",".join(f"{x:g}" for x in self.params)


_DIST_ARITY = {"fixed": 1, "uniform": 2, "normal": 2, "lognormal": 2}
_DIST_HELP = ("write fixed:N, uniform:A,B, normal:MEAN,STD or lognormal:MU,SIGMA (e.g. fixed:512, "
              "uniform:100,2000, normal:3000,500, lognormal:7.5,0.8)")


def parse_dist(spec: str, what: str = "length") -> Dist:
    """Parse a length distribution spec (see the module docstring); InputError when malformed."""
    text = str(spec).strip().lower()
    if re.fullmatch(r"\d+", text):
        text = "fixed:" + text
    kind, _, rest = text.partition(":")
    kind = kind.strip()
    if kind not in _DIST_ARITY:
        raise InputError(f"{what} distribution '{spec}' is not understood: {_DIST_HELP}.")
    try:
        params = tuple(float(x) for x in rest.split(",")) if rest.strip() else ()
    except ValueError:
        raise InputError(f"{what} distribution '{spec}': the parameters must be numbers; "
                         f"{_DIST_HELP}.") from None
    if len(params) != _DIST_ARITY[kind] or not all(math.isfinite(x) for x in params):
        raise InputError(f"{what} distribution '{spec}': {kind} takes {_DIST_ARITY[kind]} finite number(s); "
                         f"{_DIST_HELP}.")
    if kind == "fixed" and (params[0] < 1 or not params[0].is_integer()):
        raise InputError(f"{what} distribution '{spec}': fixed:N needs a whole number N >= 1.")
    if kind == "uniform" and not (params[0].is_integer() and params[1].is_integer()
                                  and 1 <= params[0] <= params[1]):
        raise InputError(f"{what} distribution '{spec}': uniform:A,B needs whole numbers 1 <= A <= B.")
    if kind in ("normal", "lognormal") and params[1] < 0:
        raise InputError(f"{what} distribution '{spec}': the spread ({params[1]:g}) must be >= 0.")
    return Dist(kind, params)


def _dist(spec: str | Dist | None, default: str, what: str) -> Dist:
    if isinstance(spec, Dist):
        return spec
    return parse_dist(default if spec is None else spec, what)


# ---------------------------------------------------------------------------------------------- helpers
#: the most requests one synth call writes (about 10 GB of memory at the default lengths): a typo such as
#: ``--rate 1e9 --duration 3600`` fails at once instead of running out of memory
MAX_REQUESTS = 100_000_000
#: coefficients of variation a gamma inter-arrival process is drawn with: beyond these the gamma shape
#: (1/cv²) underflows or the gaps collapse to zero
CV_RANGE = (0.01, 100.0)


def _check_size(rate: float, duration_s: float | None, num_requests: int | None) -> None:
    if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
        raise InputError(f"synth: --rate must be a number of requests per second > 0, got {rate!r}.")
    if (duration_s is None) == (num_requests is None):
        raise InputError("synth: give exactly one of --duration (seconds) and --num-requests.")
    if duration_s is not None and not (math.isfinite(duration_s) and 0 < duration_s <= MAX_SPAN_S):
        raise InputError(f"synth: --duration must be > 0 and <= {MAX_SPAN_S:.3g} seconds (146 years), got "
                         f"{duration_s!r}.")
    if num_requests is not None and (isinstance(num_requests, bool) or int(num_requests) != num_requests
                                     or not 1 <= num_requests <= MAX_REQUESTS):
        raise InputError(f"synth: --num-requests must be a whole number from 1 to {MAX_REQUESTS:,}, got "
                         f"{num_requests!r}.")
    if duration_s is not None and rate * duration_s > MAX_REQUESTS:
        raise InputError(f"synth: --rate {rate:g} for --duration {duration_s:g} s is about "
                         f"{rate * duration_s:.3g} requests; at most {MAX_REQUESTS:,} are written at once.")


def _check_span(arrival_s: F64) -> None:
    """Arrival times must fit the trace's int64 nanoseconds: a tiny --rate with --num-requests would
    otherwise wrap around to negative timestamps."""
    last = float(arrival_s[-1]) if arrival_s.shape[0] else 0.0
    if not (math.isfinite(last) and last <= MAX_SPAN_S):
        raise InputError(f"synth: at this --rate the trace would span {last:.3g} s, more than the "
                         f"{MAX_SPAN_S:.3g} s (146 years) a trace can hold; raise --rate or ask for fewer "
                         "requests.")


def _arrivals(gaps: Callable[[int], F64], rate: float, duration_s: float | None,
              num_requests: int | None) -> F64:
    """Arrival times in seconds (first at 0) from an inter-arrival sampler ``gaps(k)``."""
    if num_requests is not None:
        g = gaps(int(num_requests) - 1)
        return np.concatenate([[0.0], np.cumsum(g)])
    assert duration_s is not None
    parts: list[F64] = [np.zeros(1)]
    t = 0.0
    chunk = max(1024, int(rate * duration_s * 1.1) + 16)
    while t < duration_s:
        c = t + np.cumsum(gaps(chunk))
        parts.append(c)
        t = float(c[-1])
    arr = np.concatenate(parts)
    return arr[arr < duration_s]


def _private_blocks(isl: I64, block_size: int, first_id: int = 0) -> tuple[I64, I64]:
    """Each request gets its own fresh block ids: no prefix is shared."""
    counts = -(-isl // block_size)
    offsets = np.zeros(isl.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, np.arange(first_id, first_id + int(offsets[-1]), dtype=np.int64)


def _trace(arrival_s: F64, isl: I64, osl: I64, offsets: I64, ids: I64, kind: str, block_size: int,
           session: I64 | None = None, delay_ns: I64 | None = None, notes: list[str] | None = None) -> Trace:
    n = isl.shape[0]
    _check_span(np.asarray(arrival_s, dtype=np.float64))
    arrival_ns = np.rint(np.asarray(arrival_s) * NS_PER_S).astype(np.int64)
    trace = Trace(
        arrival_ns=arrival_ns, isl=isl.astype(np.int64), osl=osl.astype(np.int64), hash_offsets=offsets,
        hash_ids=ids, session=session if session is not None else np.full(n, -1, dtype=np.int64),
        delay_ns=delay_ns if delay_ns is not None else np.full(n, -1, dtype=np.int64),
        line=np.arange(1, n + 1, dtype=np.int64), block_size=block_size, source=f"<synth:{kind}>",
        format="synthetic", notes=list(notes or []),
    )
    order = np.argsort(arrival_ns, kind="stable")
    if n and not np.array_equal(order, np.arange(n)):
        trace = take_rows(trace, order)
        trace.line = np.arange(1, n + 1, dtype=np.int64)
    trace.session = dense_sessions(trace.session)
    if n:
        trace.arrival_ns = trace.arrival_ns - trace.arrival_ns[0]
    return trace


# ---------------------------------------------------------------------------------------------- generators
def poisson(rate: float, duration_s: float | None = None, num_requests: int | None = None,
            isl_dist: str | Dist | None = None, osl_dist: str | Dist | None = None, seed: int = 0,
            block_size: int = DEFAULT_BLOCK_SIZE) -> Trace:
    """Poisson arrivals at ``rate`` requests/s; every request has its own (unshared) hash blocks."""
    _check_size(rate, duration_s, num_requests)
    isl_d, osl_d = _dist(isl_dist, DEFAULT_ISL, "ISL"), _dist(osl_dist, DEFAULT_OSL, "OSL")
    rng = np.random.default_rng(seed)
    arr = _arrivals(lambda k: rng.exponential(1 / rate, size=k), rate, duration_s, num_requests)
    n = arr.shape[0]
    isl, osl = isl_d.sample(rng, n), osl_d.sample(rng, n)
    offsets, ids = _private_blocks(isl, block_size)
    return _trace(arr, isl, osl, offsets, ids, "poisson", block_size,
                  notes=[f"synthetic poisson: rate {rate:g} req/s, ISL {isl_d}, OSL {osl_d}, seed {seed}"])


def bursty(rate: float, duration_s: float | None = None, num_requests: int | None = None,
           cv: float | None = None, on_s: float | None = None, off_s: float | None = None,
           isl_dist: str | Dist | None = None, osl_dist: str | Dist | None = None, seed: int = 0,
           block_size: int = DEFAULT_BLOCK_SIZE) -> Trace:
    """Bursty arrivals with mean rate ``rate``: gamma inter-arrivals with coefficient of variation ``cv``
    (default 3; cv = 1 is Poisson), or on/off: Poisson at ``rate * (on_s + off_s) / on_s`` during ``on_s``
    seconds, then nothing for ``off_s`` seconds, repeating (starting with an on period)."""
    _check_size(rate, duration_s, num_requests)
    onoff = on_s is not None or off_s is not None
    if onoff and cv is not None:
        raise InputError("synth bursty: give either --cv (gamma inter-arrivals) or on_s/off_s (on/off), "
                         "not both.")
    isl_d, osl_d = _dist(isl_dist, DEFAULT_ISL, "ISL"), _dist(osl_dist, DEFAULT_OSL, "OSL")
    rng = np.random.default_rng(seed)
    if onoff:
        if on_s is None or off_s is None or not (on_s > 0 and off_s >= 0):
            raise InputError("synth bursty: on/off needs on_s > 0 and off_s >= 0 seconds.")
        period = on_s + off_s
        on_rate = rate * period / on_s
        # arrivals in "on-time", then map: cycle c covers real time [c*period, c*period + on_s)
        on_dur = None
        if duration_s is not None:
            on_dur = (duration_s // period) * on_s + min(duration_s % period, on_s)
        tau = _arrivals(lambda k: rng.exponential(1 / on_rate, size=k), on_rate, on_dur, num_requests)
        arr = np.floor(tau / on_s) * period + np.mod(tau, on_s)
        desc = f"on/off {on_s:g} s / {off_s:g} s"
    else:
        c = 3.0 if cv is None else float(cv)
        if not (math.isfinite(c) and CV_RANGE[0] <= c <= CV_RANGE[1]):
            raise InputError(f"synth bursty: --cv must be from {CV_RANGE[0]:g} to {CV_RANGE[1]:g} (1 is Poisson), "
                             f"got {cv!r}.")
        shape = 1 / c**2
        scale = 1 / (rate * shape)
        arr = _arrivals(lambda k: rng.gamma(shape, scale, size=k), rate, duration_s, num_requests)
        desc = f"gamma inter-arrivals, CV {c:g}"
    n = arr.shape[0]
    isl, osl = isl_d.sample(rng, n), osl_d.sample(rng, n)
    offsets, ids = _private_blocks(isl, block_size)
    return _trace(arr, isl, osl, offsets, ids, "bursty", block_size,
                  notes=[f"synthetic bursty: mean rate {rate:g} req/s, {desc}, ISL {isl_d}, OSL {osl_d}, "
                         f"seed {seed}"])


def agentic(rate: float, duration_s: float | None = None, num_requests: int | None = None,
            step_dist: str | Dist | None = None, osl_dist: str | Dist | None = None, seed: int = 0,
            block_size: int = DEFAULT_BLOCK_SIZE, turns: str | Dist = "uniform:2,10", system_tokens: int = 5000,
            groups: int = 8, think_s: float = 2.0) -> Trace:
    """Multi-turn agent sessions whose prompts grow each turn and share prefixes.

    Each session belongs to one of ``groups`` agents; sessions of one agent share a ``system_tokens`` system
    prompt (the same leading hash blocks). Turn 1's prompt is the system prompt plus a user message; turn
    k's prompt is turn k-1's prompt plus turn k-1's output plus a new step (tool result or user message),
    so turn k's ``hash_ids`` are turn k-1's full blocks plus new blocks (turn k-1's last, partial block is
    recomputed: its content grew). Steps come from ``step_dist`` (default ``lognormal:6.4,0.6``, mean ~720
    tokens), outputs from ``osl_dist`` (default ``normal:175,30``), turns per session from ``turns``
    (default ``uniform:2,10``), think time between turns is exponential with mean ``think_s``.
    With the defaults, the mean prompt is about 8.5k tokens and the mean output about 175.

    ``rate`` is the overall request rate: sessions start as a Poisson process at ``rate / mean turns`` per
    second. Turn k > 0 is recorded at the previous turn's time plus its think time (the replay releases it
    after the previous turn completes plus ``delay``). With ``duration_s`` sessions start in
    ``[0, duration_s)`` and turns recorded after it are dropped; with ``num_requests`` the last session is
    cut to make the count.
    """
    _check_size(rate, duration_s, num_requests)
    step_d = _dist(step_dist, AGENTIC_STEP_ISL, "agentic step")
    osl_d = _dist(osl_dist, AGENTIC_OSL, "OSL")
    turns_d = turns if isinstance(turns, Dist) else parse_dist(turns, "turns")
    if isinstance(system_tokens, bool) or int(system_tokens) != system_tokens or system_tokens < 0:
        raise InputError(f"synth agentic: system_tokens must be a whole number >= 0, got {system_tokens!r}.")
    if isinstance(groups, bool) or int(groups) != groups or groups < 1:
        raise InputError(f"synth agentic: groups must be a whole number >= 1, got {groups!r}.")
    if not (math.isfinite(think_s) and think_s >= 0):
        raise InputError(f"synth agentic: think_s must be >= 0 seconds, got {think_s!r}.")
    rng = np.random.default_rng(seed)
    mean_turns = max(turns_d.mean, 1.0)
    session_rate = rate / mean_turns
    sys_full = int(system_tokens) // block_size  # full blocks of the shared system prompt
    next_id = groups * sys_full  # ids [g*sys_full, (g+1)*sys_full) are group g's system blocks

    if num_requests is not None:
        est_sessions = int(num_requests / mean_turns * 1.2) + 8
    else:
        assert duration_s is not None
        est_sessions = int(session_rate * duration_s * 1.2) + 8
    arr_s: list[float] = []
    isl_l: list[int] = []
    osl_l: list[int] = []
    sess_l: list[int] = []
    delay_l: list[int] = []
    blocks: list[list[int]] = []
    t = 0.0
    s = 0
    total = 0
    target = None if num_requests is None else int(num_requests)
    while True:
        # draw per-session randomness in batches, always in the same order
        starts_gap = rng.exponential(1 / session_rate, size=est_sessions)
        n_turns = turns_d.sample(rng, est_sessions)
        group = rng.integers(0, groups, size=est_sessions)
        done = False
        for j in range(est_sessions):
            if s > 0:
                t += float(starts_gap[j])
            if duration_s is not None and t >= duration_s:
                done = True
                break
            k_turns = int(n_turns[j])
            steps = step_d.sample(rng, k_turns)
            outs = osl_d.sample(rng, k_turns)
            thinks = rng.exponential(think_s, size=k_turns) if think_s > 0 else np.zeros(k_turns)
            g = int(group[j])
            prefix = list(range(g * sys_full, (g + 1) * sys_full))
            prompt = int(system_tokens)
            prev_blocks = prefix
            tt = t
            for k in range(k_turns):
                if k == 0:
                    prompt += int(steps[0])
                    keep = prefix[: prompt // block_size]
                else:
                    keep = prev_blocks[: prompt // block_size]  # the previous prompt's full blocks
                    prompt += int(outs[k - 1]) + int(steps[k])
                    tt += float(thinks[k])
                    if duration_s is not None and tt >= duration_s:
                        break
                need = -(-prompt // block_size) - len(keep)
                cur = keep + list(range(next_id, next_id + need))
                next_id += need
                arr_s.append(tt)
                isl_l.append(prompt)
                osl_l.append(int(outs[k]))
                sess_l.append(s)
                delay_l.append(-1 if k == 0 else s_to_ns(float(thinks[k])))
                blocks.append(cur)
                prev_blocks = cur
                total += 1
                if target is not None and total >= target:
                    break
            s += 1
            if target is not None and total >= target:
                done = True
                break
        if done:
            break
    n = len(isl_l)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blocks], out=offsets[1:])
    ids = np.fromiter((x for b in blocks for x in b), dtype=np.int64, count=int(offsets[-1]))
    return _trace(
        np.asarray(arr_s, dtype=np.float64), np.asarray(isl_l, dtype=np.int64),
        np.asarray(osl_l, dtype=np.int64), offsets, ids, "agentic", block_size,
        session=np.asarray(sess_l, dtype=np.int64), delay_ns=np.asarray(delay_l, dtype=np.int64),
        notes=[f"synthetic agentic: {rate:g} req/s overall, {groups} agents with {system_tokens} "
               f"system-prompt tokens, turns {turns_d}, step {step_d}, OSL {osl_d}, think {think_s:g} s, "
               f"seed {seed}"],
    )


KINDS = ("poisson", "bursty", "agentic")


def generate(kind: str, *, rate: float, duration_s: float | None = None, num_requests: int | None = None,
             isl: str | None = None, osl: str | None = None, cv: float | None = None, seed: int = 0,
             block_size: int = DEFAULT_BLOCK_SIZE) -> Trace:
    """The CLI's entry point. For ``agentic``, ``isl`` is the tokens each turn adds (prompts grow)."""
    if kind == "poisson":
        return poisson(rate, duration_s, num_requests, isl, osl, seed, block_size)
    if kind == "bursty":
        return bursty(rate, duration_s, num_requests, cv=cv, isl_dist=isl, osl_dist=osl, seed=seed,
                      block_size=block_size)
    if kind == "agentic":
        return agentic(rate, duration_s, num_requests, step_dist=isl, osl_dist=osl, seed=seed,
                       block_size=block_size)
    raise InputError(f"synth: unknown kind '{kind}'; choose one of {', '.join(KINDS)}.")


# ---------------------------------------------------------------------------------------------- writer
def _ms(ns: int) -> str:
    """Integer ns -> milliseconds as a JSON number, exact (an integer when it is one)."""
    sign = "-" if ns < 0 else ""
    q, r = divmod(abs(ns), 1_000_000)
    if r == 0:
        return f"{sign}{q}"
    return f"{sign}{q}.{r:06d}".rstrip("0")


def write_trace(trace: Trace, path: str | Path) -> None:
    """Write ``trace`` as Mooncake-style JSONL (``.gz`` compresses): ``timestamp`` (ms, fractional when the
    ns do not fall on a ms), ``input_length``, ``output_length``, ``hash_ids`` (when the trace has any) and,
    for session turns, ``session_id`` and (turns after the first) ``delay`` in ms. :func:`load_trace` reads
    it back to the same columns."""
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise InputError(f"cannot write {p}: folder {p.parent} does not exist.")
    with_hashes = trace.has_hashes
    arr = trace.arrival_ns.tolist()
    isl = trace.isl.tolist()
    osl = trace.osl.tolist()
    sess = trace.session.tolist()
    delay = trace.delay_ns.tolist()
    off = trace.hash_offsets.tolist()
    ids = trace.hash_ids.tolist()
    with _atomic_text(p) as fh:
        _write_lines(fh, arr, isl, osl, sess, delay, off, ids, with_hashes)


@contextmanager
def _atomic_text(p: Path) -> Iterator[IO[str]]:
    """A UTF-8 text stream (gzip-compressed for ``.gz``) written atomically onto ``p``."""
    with atomic_open(p, "synth") as raw:
        if p.suffix == ".gz":
            with gzip.GzipFile(fileobj=raw, mode="wb") as gz, io.TextIOWrapper(gz, encoding="utf-8") as fh:
                yield fh
        else:
            with io.TextIOWrapper(raw, encoding="utf-8") as fh:
                yield fh


def _write_lines(fh: IO[str], arr: list[int], isl: list[int], osl: list[int], sess: list[int],
                 delay: list[int], off: list[int], ids: list[int], with_hashes: bool) -> None:
    buf: list[str] = []
    for i in range(len(isl)):
        parts = [f'{{"timestamp": {_ms(arr[i])}, "input_length": {isl[i]}, "output_length": {osl[i]}']
        if with_hashes:
            parts.append(', "hash_ids": [' + ", ".join(map(str, ids[off[i] : off[i + 1]])) + "]")
        if sess[i] >= 0:
            parts.append(f', "session_id": {sess[i]}')
            if delay[i] >= 0:
                parts.append(f', "delay": {_ms(delay[i])}')
        parts.append("}\n")
        buf.append("".join(parts))
        if len(buf) >= 4096:
            fh.write("".join(buf))
            buf.clear()
    fh.write("".join(buf))
