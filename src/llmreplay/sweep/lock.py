"""One sweep per output folder: an exclusive lock on ``OUT/.sweep.lock``, and SIGTERM handled like Ctrl-C.

Two sweeps writing one folder would rewrite each other's table (rows of the other grid are lost). The lock is
``flock(2)`` on a file in the folder: the kernel drops it when the holder exits, however it exits, so a killed
sweep never leaves a stale lock behind. The file holds who has it (pid, host, start time), so the second sweep
can say whom it is waiting for. (``flock`` is advisory and local: it does not protect a folder shared over NFS
between machines.)
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from llmreplay.errors import InputError

LOCK_NAME = ".sweep.lock"


@contextmanager
def folder_lock(out_dir: Path) -> Iterator[Path]:
    """Hold the exclusive lock on ``out_dir`` (created if missing) for the ``with`` block; InputError naming
    the holder when another sweep has it."""
    path = out_dir / LOCK_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InputError(f"--out {out_dir}: cannot create the sweep's lock file {path}: "
                         f"{exc.strerror or exc}.") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"--out {out_dir} is in use by another sweep ({_holder(fd)}); wait for it to "
                             "finish or stop it, or choose another --out.") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)  # the kernel lock is what counts; an empty file says nobody holds it
    finally:
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "it has not written its pid yet"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so the same clean-up runs: the
    pool and its workers are stopped and every recorded point is kept."""

    exit_code = 128 + signal.SIGTERM


_sigterm = {"received": False}


def sigterm_received() -> bool:
    """Whether SIGTERM arrived in the last :func:`terminate_as_interrupt` block. Some libraries (Ray's
    ``ray.wait``) turn any KeyboardInterrupt into a plain one, so the exception type alone cannot tell."""
    return _sigterm["received"]


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (only possible in the main thread; elsewhere
    the default action stays)."""
    _sigterm["received"] = False
    try:
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
    _sigterm["received"] = True
    raise Terminated()


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, so that a point is recorded whole: the row written and
    counted together (a signal between the two made ``terminated: 0 point(s) recorded`` while the table held
    one). At the end of the block each held signal goes to the handler it would have reached (raising
    KeyboardInterrupt or :class:`Terminated` there). Done with Python handlers, not the thread's signal mask:
    the kernel hands a process-directed signal to any thread that does not block it (the pool's threads, Ray's),
    so a mask on the main thread alone holds nothing back."""
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous: dict[int, Any] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            if signal.getsignal(signum) is not None:  # None: set from C, which we could not put back
                previous[signum] = signal.signal(signum, hold)
    except ValueError:  # not the main thread: signals go to the main thread's handlers anyway
        pass
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        for came in dict.fromkeys(held):  # each signal once, in the order it came
            handler = previous[came]
            if callable(handler):
                handler(came, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(came)
