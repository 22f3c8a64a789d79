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
    one). The signal is delivered, and its handler raises, as soon as the block ends."""
    try:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask (Windows)
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
