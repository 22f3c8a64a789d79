"""One exception type for every user mistake, so the CLI can turn it into exit code 2 without a traceback."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: a trace line, a config key, a flag. The message is a one-paragraph explanation
    that names the file/line/field and what is allowed."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None) -> None:
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(where + message)
