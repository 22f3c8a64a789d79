"""Reading user files and writing outputs safely: the one place that turns file-system and encoding trouble
into an :class:`InputError` (exit 2, one paragraph), and that writes every output atomically.

Why one module: a non-UTF-8 config, a YAML alias bomb, JSON nested 100k deep or a read-only output folder
are the same class of user mistake wherever they happen, and each used to surface as a traceback in a
different place.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from llmreplay.errors import InputError

#: YAML aliases allowed in one document. Real configs use a handful; an alias bomb ("billion laughs") needs
#: many to blow up, so a small cap stops it before expansion costs anything.
MAX_YAML_ALIASES = 100


def read_text(path: str | Path, what: str) -> str:
    """The whole file as UTF-8 text (a BOM is allowed). Missing, unreadable or non-UTF-8 → InputError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{what}: {p} is a folder, not a file.") from None
    except OSError as exc:
        raise InputError(f"{what}: cannot read {p}: {exc.strerror or exc}.") from None
    return decode_utf8(data, p, what)


def decode_utf8(data: bytes, path: str | Path, what: str) -> str:
    """Decode UTF-8 (BOM allowed); name the line and byte of the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{what}: {path} is not UTF-8 text (line {line}, byte offset {exc.start}: "
            f"{data[exc.start:exc.start + 1]!r}). Save the file as UTF-8."
        ) from None


@functools.cache
def _bounded_safe_loader() -> type[Any]:
    """PyYAML's SafeLoader with a cap on aliases, so an alias bomb fails fast instead of eating memory. Built on
    first use: importing PyYAML is start-up time a run without a YAML file need not pay."""
    import yaml

    class BoundedSafeLoader(yaml.SafeLoader):
        _aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > MAX_YAML_ALIASES:
                    raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} YAML aliases: this looks like an alias bomb")
            return super().compose_node(parent, index)

    return BoundedSafeLoader


def parse_yaml(text: str, what: str) -> Any:
    """Safe YAML (no Python objects, at most ``MAX_YAML_ALIASES`` aliases)."""
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_safe_loader())  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        raise InputError(f"{what} is not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise InputError(f"{what}: YAML nested too deeply to be a config.") from None


def parse_json(text: str, what: str) -> Any:
    """JSON with Python's parser; a syntax error or absurd nesting → InputError naming line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.") from None
    except RecursionError:
        raise InputError(f"{what}: JSON nested too deeply to be a config or report.") from None


def read_structured(path: str | Path, what: str) -> Any:
    """A .json file as JSON, anything else as YAML (a superset of JSON)."""
    p = Path(path)
    text = read_text(p, what)
    where = f"{what}: {p}"
    return parse_json(text, where) if p.suffix.lower() == ".json" else parse_yaml(text, where)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_open(path: str | Path, what: str = "output") -> Iterator[IO[bytes]]:
    """A binary stream into a uniquely named temporary file beside ``path``, renamed onto ``path`` only when the
    block ends without error: a failed or interrupted write never leaves a truncated file where a good one was.
    (Stream through it what is too big to hold at once, e.g. a synthetic trace of 10^8 requests.)
    File-system errors → InputError."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:
        raise InputError(f"{what}: cannot write {p}: {exc.strerror or exc}.") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; an output gets what open() would give it
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{what}: cannot write {p}: {exc.strerror or exc}.") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: str | bytes, what: str = "output") -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, what) as fh:
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


@contextmanager
def atomic_path(path: str | Path, what: str = "output") -> Iterator[Path]:
    """A temporary path in ``path``'s folder (same suffix, so writers that go by the extension still work) for a
    writer that wants a file name rather than bytes; renamed onto ``path`` when the block ends without error,
    removed otherwise. File-system errors → InputError."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=p.suffix, dir=p.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # as atomic_open: the permissions open() would give
        os.close(fd)
    except OSError as exc:
        raise InputError(f"{what}: cannot write {p}: {exc.strerror or exc}.") from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"{what}: cannot write {p}: {exc.strerror or exc}.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: str | Path, what: str) -> Path:
    """Fail now, not after an hour of simulation, if ``path`` cannot be written: its folder is created and a
    scratch file is made and removed there. Returns the path. A folder in the way or a file where a folder
    should be → InputError naming the path."""
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{what}: {p} is a folder; give a file name.")
    for parent in p.parents:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"{what}: cannot write {p}: {parent} is a file, not a folder.")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".check", dir=p.parent)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise InputError(f"{what}: cannot write {p}: {exc.strerror or exc}.") from None
    return p
