"""Where points run: a local process pool, or Ray tasks on a cluster. Both stream results as points finish.

The trace is loaded once in the driver and shipped once per worker (pool initializer) or once per cluster
(``ray.put``); each point then applies its own slicing / speed-up / jitter via ``runner.run(cfg, trace=raw)``.
A point that raises is a result with status ``failed``, never an exception that stops the sweep: a 31-point
study should not lose 30 results to one bad corner of the grid.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import time
import traceback
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Literal

from llmreplay.config import RunConfig
from llmreplay.errors import InputError
from llmreplay.runner import dump_report, run
from llmreplay.trace.model import Trace

#: (trace path, trace_format, trace_block_size): the inputs of ``load_trace``, so each distinct file loads once
TraceKey = tuple[str, str, int]
Traces = dict[TraceKey, Trace]
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class PointTask:
    """What a worker needs for one point: small, so it pickles cheaply; the trace travels separately."""

    index: int
    id: str
    cfg: RunConfig

    @property
    def trace_key(self) -> TraceKey:
        return trace_key(self.cfg)


@dataclass(frozen=True)
class PointResult:
    """A finished point. ``report_json`` is the report as text, dumped in the worker so a report that cannot
    be written (e.g. a NaN) fails that point rather than the driver, and the table is flattened from exactly
    the text written to ``OUT/points/``."""

    index: int
    id: str
    status: Literal["ok", "failed"]
    error: str | None
    report_json: str | None
    wall_s: float


def trace_key(cfg: RunConfig) -> TraceKey:
    assert cfg.trace is not None  # checked by grid.point_configs
    return (cfg.trace, cfg.trace_format, cfg.trace_block_size)


def run_point(task: PointTask, traces: Traces) -> PointResult:
    """Run one point; any exception becomes a failed result carrying its message."""
    t0 = time.perf_counter()
    try:
        out = run(task.cfg, trace=traces[task.trace_key])
        text = dump_report(out.report)
    except Exception as exc:
        return failed(task, exc, time.perf_counter() - t0)
    return PointResult(task.index, task.id, "ok", None, text, time.perf_counter() - t0)


def failed(task: PointTask, exc: BaseException, wall_s: float = 0.0) -> PointResult:
    msg = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, InputError):  # a bug: say where, so the row alone is enough to report it
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            msg += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return PointResult(task.index, task.id, "failed", msg, None, wall_s)


#: a generator, so the driver can close it on interruption and the pool / Ray tasks are stopped at once
Results = Generator[PointResult, None, None]
Executor = Callable[[list[PointTask], Traces], Results]


def make_executor(name: str, jobs: int, address: str | None = None) -> Executor:
    """The executor called ``name``; ``jobs`` is the pool size (local) or the CPUs of a local Ray instance."""
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1 (got {jobs}).")
    if name == "local":
        if address is not None:
            raise InputError("--address is for --executor ray.")
        if jobs > max_local_jobs():
            raise InputError(f"--jobs {jobs:,} would start that many processes on this machine ({os.cpu_count()} "
                             f"CPUs); at most {max_local_jobs():,} (4 per CPU, at least 256) for --executor local. "
                             "For more, use --executor ray on a cluster.")
        return lambda tasks, traces: local_results(tasks, traces, jobs)
    if name == "ray":
        _import_ray()
        return lambda tasks, traces: ray_results(tasks, traces, jobs, address)
    raise InputError(f"--executor must be one of {', '.join(EXECUTORS)} (got '{name}').")


# ---- local process pool -----------------------------------------------------------------------------------
def max_local_jobs() -> int:
    """The most processes a local pool may start: a typo such as ``--jobs 100000`` on a 10,000-point grid
    must not fork 10,000 simulators. Points are CPU-bound, so beyond a few per CPU nothing is gained."""
    return max(256, 4 * (os.cpu_count() or 1))


_WORKER_TRACES: Traces = {}


def _init_worker(traces: Traces) -> None:
    """Pool initializer: the traces arrive once per worker process, not once per point. Ctrl-C at a terminal
    reaches the whole process group; workers ignore it and leave the stopping to the driver, which
    terminates them (so one Ctrl-C does not print a traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_TRACES.update(traces)


def _run_in_worker(task: PointTask) -> PointResult:
    return run_point(task, _WORKER_TRACES)


def _mp_context() -> multiprocessing.context.BaseContext:
    """forkserver (spawn where missing): forking a driver that runs a progress-bar thread can deadlock. The
    fork server imports the simulator once, so each worker starts as a cheap fork of it, not a fresh import.
    As with any spawn-style pool, a script calling ``run_sweep`` needs the ``if __name__ == "__main__":`` guard.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def local_results(tasks: list[PointTask], traces: Traces, jobs: int) -> Results:
    """Run ``tasks`` on ``jobs`` processes and yield results in completion order."""
    if not tasks:
        return
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=_mp_context(),
                               initializer=_init_worker, initargs=(traces,))
    finished = False
    futures: dict[Future[PointResult], PointTask] = {}
    try:
        futures = {pool.submit(_run_in_worker, t): t for t in tasks}
        pending = set(futures)
        try:
            for fut in as_completed(futures):
                pending.discard(fut)
                yield _result(fut, futures[fut])
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C or SIGTERM while waiting: hand over the points that finished meanwhile, so the driver
            # records them, then stop
            for fut in [f for f in pending if f.done() and not f.cancelled()]:
                yield _result(fut, futures[fut])
            raise
        finished = True
    finally:
        # On interruption (Ctrl-C, SIGTERM, a raising callback): drop queued points and stop the running ones
        # now; their results would be discarded anyway (not recorded, so a re-run does them again).
        if not finished:
            _terminate_workers(pool)
            _unblock_result_reader(pool)
        pool.shutdown(wait=True, cancel_futures=True)


def _result(fut: Future[PointResult], task: PointTask) -> PointResult:
    try:
        return fut.result()
    except Exception as exc:  # the worker process died (BrokenProcessPool): record, keep going
        return failed(task, exc)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """SIGTERM every worker of ``pool`` and reap it. ``ProcessPoolExecutor`` gains ``terminate_workers()`` only
    in Python 3.14; until then its worker table (``_processes``, pid → Process) is the way in."""
    workers = list((getattr(pool, "_processes", None) or {}).values())
    for proc in workers:
        if proc.is_alive():
            proc.terminate()
    for proc in workers:
        proc.join(timeout=10)
        if proc.is_alive():  # pragma: no cover - a worker stuck in uninterruptible I/O
            proc.kill()
            proc.join(timeout=5)


def _unblock_result_reader(pool: ProcessPoolExecutor) -> None:
    """A worker terminated while it was sending its result leaves half a message in the result pipe; the pool's
    manager thread then waits for the rest forever, and ``shutdown(wait=True)`` (or the interpreter's exit)
    with it: a hang seen under load after Ctrl-C. Once every worker is gone, closing our own copy of the pipe's
    write end turns that wait into end-of-file, which the manager thread handles as a broken pool and exits."""
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)
    if writer is not None:
        with contextlib.suppress(OSError):
            writer.close()


# ---- Ray ---------------------------------------------------------------------------------------------------
def _restore_sigterm(handler: Any) -> None:
    """``ray.init`` installs its own C-level SIGTERM handler in the driver, which dumps a stack and aborts
    (exit 134) without running our clean-up; put back the handler the sweep had (main thread only)."""
    if handler is None:  # set from C, not Python: nothing to restore
        return
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGTERM, handler)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray, an optional extra: pip install 'llmreplay[ray]'.") from None
    return ray


def ray_results(tasks: list[PointTask], traces: Traces, jobs: int, address: str | None) -> Results:
    """One Ray task per point; the traces go to the object store once and every task reads them from there.

    Without ``address`` a local Ray instance with ``jobs`` CPUs is started (and stopped at the end); with one
    (``auto``, ``ray://host:10001``) the cluster decides how many points run at once. An instance the caller
    already started (``ray.init`` before the sweep) is used as it is and left running.
    """
    if not tasks:
        return
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        on_term = signal.getsignal(signal.SIGTERM)
        ray.init(address=address, num_cpus=jobs if address is None else None, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
        _restore_sigterm(on_term)
    pending: dict[Any, PointTask] = {}
    try:
        traces_ref = ray.put(traces)
        remote = ray.remote(num_cpus=1)(run_point)  # Ray retries a task whose node died; run_point never raises
        pending = {remote.remote(t, traces_ref): t for t in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                task = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # the task's worker died: record, keep going
                    yield failed(task, exc)
    finally:
        for ref in pending:  # interrupted: stop queued and running tasks (force: kill the task's worker)
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


@contextlib.contextmanager
def ray_session(jobs: int, address: str | None) -> Iterator[None]:
    """One Ray instance for several batches of points (``ray_results`` uses a running instance as it is):
    callers that run point after point, as the baselines' searches do, start Ray once, not once a batch."""
    ray = _import_ray()
    if ray.is_initialized():
        yield
        return
    on_term = signal.getsignal(signal.SIGTERM)
    ray.init(address=address, num_cpus=jobs if address is None else None, include_dashboard=False,
             log_to_driver=False, logging_level=logging.ERROR)
    _restore_sigterm(on_term)
    try:
        yield
    finally:
        ray.shutdown()
