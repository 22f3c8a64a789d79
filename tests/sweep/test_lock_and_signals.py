"""A sweep owns its output folder (a second sweep on it exits 2 naming the holder), stops cleanly on SIGTERM
(no process left behind, finished points kept), and refuses absurd grids and non-finite axis values."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from sweeputil import BASE, llmreplay, read_table, write_sweep

from llmreplay.errors import InputError
from llmreplay.sweep import load_sweep, run_sweep
from llmreplay.sweep.grid import expand, grid_size, point_configs
from llmreplay.sweep.lock import LOCK_NAME, Terminated, folder_lock, signals_deferred, terminate_as_interrupt
from llmreplay.trace import load_trace
from llmreplay.trace.synth import poisson, write_trace


# ---- /proc helpers -----------------------------------------------------------------------------------------
def _ppids() -> dict[int, int]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            out[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for p, pp in _ppids().items():
        children.setdefault(pp, []).append(p)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in found:
                found.add(c)
                todo.append(c)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout  # generous guard only: the assertions are on outcomes
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test starts; whatever is left of them is killed at the end, whatever the outcome."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def sweep_proc(f: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "llmreplay", "sweep", str(f), "--out", str(out), "--no-progress",
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def holder_pid(out: Path) -> int | None:
    try:
        return int(json.loads((out / LOCK_NAME).read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


# ---- the lock ----------------------------------------------------------------------------------------------
def test_two_sweeps_on_one_folder_one_runs_one_exits_2(tmp_path: Path,
                                                       started: list[subprocess.Popen[str]]) -> None:
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0, 10, 20, 30]}, base={**BASE, "max_requests": 400})
    out = tmp_path / "out"
    first = sweep_proc(f, out, "--jobs", "1")
    started.append(first)
    wait_for(lambda: holder_pid(out) == first.pid or first.poll() is not None, 120, "the first sweep's lock")
    assert first.poll() is None, first.communicate()
    os.kill(first.pid, signal.SIGSTOP)  # hold it inside its run, deterministically
    try:
        second = llmreplay("sweep", str(f), "--out", str(out), "--jobs", "1", "--no-progress")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr
    msg = " ".join(second.stderr.split())
    assert f"is in use by another sweep (pid {first.pid} on {socket.gethostname()}, started 20" in msg
    assert "Traceback" not in second.stderr
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert [r["status"] for r in read_table(out)] == ["ok"] * 4  # the second sweep touched nothing


def test_the_lock_is_released_when_the_holder_ends(tmp_path: Path) -> None:
    holder = rf"pid {os.getpid()} on"
    with folder_lock(tmp_path), pytest.raises(InputError, match=holder), folder_lock(tmp_path):
        pass
    with folder_lock(tmp_path):  # free again
        pass


def test_results_are_written_under_unique_temporary_names(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers never share a temporary file (the old fixed ``results.parquet.tmp`` made one crash)."""
    import tempfile

    names: list[str] = []
    real = tempfile.mkstemp

    def spy(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)  # type: ignore[call-overload]
        names.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0, 10]}, base={**BASE, "max_requests": 30})
    run_sweep(f, tmp_path / "out", jobs=1)
    table_tmps = [n for n in names if "results.parquet" in n]
    assert len(table_tmps) == len(set(table_tmps)) >= 2
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "out").rglob("*"))


# ---- SIGTERM -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_sigterm_stops_pool_and_children_and_keeps_finished_points(tmp_path: Path, executor: str,
                                                                   started: list[subprocess.Popen[str]]) -> None:
    """Local: fork server, workers, resource tracker. Ray: the local instance the sweep started (GCS, raylet,
    workers), which ``ray.init`` would otherwise let its own SIGTERM handler abort (exit 134)."""
    if executor == "ray":
        pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'llmreplay[ray]'")
    trace = tmp_path / "long.jsonl"
    write_trace(poisson(50, num_requests=100_000, seed=1), trace)  # a full point takes minutes here
    base = {"trace": str(trace), "num_workers": 1, "extra_engine_args": {"perf_model": {"kind": "constant",
                                                                                         "step_ms": 5}}}
    f = write_sweep(tmp_path, {"max_requests": [20, 100_000, 99_999, 99_998]}, base=base)
    out = tmp_path / "out"
    proc = sweep_proc(f, out, "--jobs", "2", "--executor", executor)
    started.append(proc)
    wait_for(lambda: (out / "results.parquet").exists() or proc.poll() is not None, 300, "the first point")
    wait_for(lambda: len(descendants(proc.pid)) >= 3 or proc.poll() is not None, 60, "the pool")
    assert proc.poll() is None, proc.communicate()
    family = descendants(proc.pid)  # forkserver, its workers, the resource tracker
    os.kill(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "terminated: 1 point(s) recorded" in stdout and "Traceback" not in stderr
    wait_for(lambda: not any(alive(p) for p in family), 60, f"the children {sorted(family)} to exit")
    rows = read_table(out)
    assert [(r["max_requests"], r["status"]) for r in rows] == [(20, "ok")]
    assert (out / "points" / f"{rows[0]['id']}.json").exists()
    assert (out / LOCK_NAME).read_text() == ""  # released: a re-run may start at once


# ---- bounded grids and finite axes -------------------------------------------------------------------------
def test_a_grid_of_10_to_the_12_points_is_refused_before_expanding(tmp_path: Path) -> None:
    axes = {"extra_engine_args.startup_time": "0..9999", "extra_engine_args.max_num_seqs": "1..10000",
            "seed": "0..9999"}
    f = write_sweep(tmp_path, axes)
    sweep = load_sweep(f)
    assert grid_size(sweep) == 10**12
    with pytest.raises(InputError, match=r"the grid has 1,000,000,000,000 runs .* more than the cap of 10,000"):
        expand(sweep)
    out = llmreplay("sweep", str(f), "--out", str(tmp_path / "out"), "--no-progress")
    assert out.returncode == 2 and "--max-points" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "out").exists()  # refused before touching the output folder


def test_the_cap_can_be_raised_by_flag_or_file(tmp_path: Path) -> None:
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0, 10, 20]}, base={**BASE, "max_requests": 20},
                    repeats=2)
    with pytest.raises(InputError, match="6 runs"):
        expand(load_sweep(f), max_points=5)
    assert len(expand(load_sweep(f), max_points=6)) == 6
    g = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0, 10, 20]}, name="capped.yaml", max_points=2)
    with pytest.raises(InputError, match="more than the cap of 2"):
        expand(load_sweep(g))
    assert len(expand(load_sweep(g), max_points=3)) == 3
    bad = llmreplay("sweep", str(f), "--max-points", "0")
    assert bad.returncode == 2 and "--max-points" in bad.stderr


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"perf_model": {"step_ms": np.nan}}])
def test_non_finite_axis_values_exit_2(tmp_path: Path, value: object) -> None:
    axis = "extra_engine_args" if isinstance(value, dict) else "extra_engine_args.startup_time"
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({"base": BASE, "axes": {axis: [value]}}).replace("!!python/object", ""))
    out = llmreplay("sweep", str(f), "--out", str(tmp_path / "out"))
    assert out.returncode == 2, out.stderr
    assert "finite" in out.stderr and "Traceback" not in out.stderr


def test_yaml_nan_in_a_range_or_the_base_exits_2(tmp_path: Path) -> None:
    for doc, needle in (("axes: {extra_engine_args.startup_time: [0, .nan]}", "axes.extra_engine_args"),
                        ("axes: {extra_engine_args.startup_time: '0..1e400 step 1e399'}", "largest float"),
                        ("base: {arrival_speedup_ratio: .inf}\naxes: {seed: [1]}", "base.arrival_speedup_ratio")):
        f = tmp_path / "s.yaml"
        f.write_text(f"base: {{trace: {BASE['trace']}}}\n{doc}\n" if doc.startswith("axes") else doc + "\n")
        with pytest.raises(InputError, match=needle):
            load_sweep(f)


def test_points_finished_while_stopping_are_handed_over_before_the_interrupt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C/SIGTERM lands while the driver waits: every point already finished is still yielded (and so
    recorded) before the interrupt propagates and the pool is stopped."""
    from concurrent import futures as cf

    from llmreplay.sweep import executors as ex
    from llmreplay.sweep.executors import PointTask, local_results

    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0, 10, 20]}, base={**BASE, "max_requests": 20})
    sweep = load_sweep(f)
    points = expand(sweep)
    tasks = [PointTask(p.index, p.id, cfg) for p, cfg in zip(points, point_configs(sweep, points), strict=True)]
    traces = {tasks[0].trace_key: load_trace(*tasks[0].trace_key)}

    def interrupted_wait(fs: dict[cf.Future[object], object]) -> Iterator[object]:
        cf.wait(list(fs))  # every point finishes, then the "signal" arrives before any is handed over
        raise KeyboardInterrupt

    monkeypatch.setattr(ex, "as_completed", interrupted_wait)
    got = []
    with pytest.raises(KeyboardInterrupt):
        for result in local_results(tasks, traces, 2):
            got.append(result)
    assert sorted(r.index for r in got) == [0, 1, 2] and all(r.status == "ok" for r in got)


def test_an_unusable_out_folder_fails_before_any_point_runs(tmp_path: Path) -> None:
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0]}, base={**BASE, "max_requests": 20})
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    with pytest.raises(InputError, match=r"--out .*taken: cannot create the sweep's lock file"):
        run_sweep(f, a_file, jobs=1)
    with pytest.raises(InputError, match="cannot create the sweep's lock file"):
        run_sweep(f, a_file / "below", jobs=1)
    assert a_file.read_text() == "not a folder"


def test_a_local_pool_is_capped(tmp_path: Path) -> None:
    from llmreplay.sweep.executors import make_executor, max_local_jobs

    assert max_local_jobs() >= 256
    with pytest.raises(InputError, match=r"--jobs 1,000,000 would start that many processes"):
        make_executor("local", 1_000_000)
    make_executor("local", max_local_jobs())  # the cap itself is allowed
    f = write_sweep(tmp_path, {"extra_engine_args.startup_time": [0]}, base={**BASE, "max_requests": 20})
    out = llmreplay("sweep", str(f), "--out", str(tmp_path / "out"), "--jobs", "1000000")
    assert out.returncode == 2 and "--executor ray" in out.stderr and "Traceback" not in out.stderr


def test_a_signal_while_a_point_is_recorded_waits_for_the_record() -> None:
    """SIGTERM between writing a row and counting it must not split the two: it is held to the block's end,
    also while other threads run (the kernel may hand the signal to any of them, as in a sweep with its pool)."""
    import threading

    steps = []
    done = threading.Event()
    other = threading.Thread(target=done.wait, daemon=True)
    other.start()
    with pytest.raises(Terminated), terminate_as_interrupt():
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("written")
            steps.append("counted")
        steps.append("after the block")  # never reached: the held signal raises as the block ends
    done.set()
    assert steps == ["written", "counted"]


def test_stopping_a_pool_whose_result_pipe_holds_half_a_message_returns() -> None:
    """A worker terminated mid-send leaves half a result in the pipe: the pool's manager thread must not wait for
    the rest forever (stopping the sweep hung there under load). The thread's join timeout is only a guard."""
    import struct
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from llmreplay.sweep.executors import _mp_context, _terminate_workers, _unblock_result_reader

    pool = ProcessPoolExecutor(max_workers=1, mp_context=_mp_context())
    pool.submit(time.sleep, 60)
    wait_for(lambda: bool(getattr(pool, "_processes", None)), 60, "the worker")
    writer = pool._result_queue._writer  # type: ignore[attr-defined]
    os.write(writer.fileno(), struct.pack("!i", 1000) + b"x" * 10)  # a header promising 1,000 bytes, then 10
    _terminate_workers(pool)
    _unblock_result_reader(pool)
    stopper = threading.Thread(target=pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, daemon=True)
    stopper.start()
    stopper.join(timeout=120)
    assert not stopper.is_alive(), "the pool's manager thread waits for the rest of a message that never comes"
