"""The commands our documentation shows, extracted so the test suite can run each one as a user would.

Convention (stated in docs/usage.md): a fenced block tagged ``bash`` (or ``sh``, ``shell``, ``console``) holds
commands a reader can paste; an untagged or ``text`` block is a synopsis with placeholders and is not run. In
a runnable block, every command that starts with ``llmreplay`` is extracted (backslash continuations and
quoted strings spanning lines joined, ``#`` comments dropped); other lines (``. .venv/bin/activate``,
``make ...``) are not llmreplay commands and are covered elsewhere.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: the shared data next to the repository (traces, Dynamo reference runs), as tests/conftest.py finds it
SHARED = REPO.parent / "shared"
SHARED_TRACES = SHARED / "traces"
#: the pages whose commands must run (issue #12): README, the usage guide, the examples
DOCUMENTED = ("README.md", "docs/usage.md", "examples/README.md")
RUNNABLE_FENCES = {"bash", "sh", "shell", "console"}
_FENCE = re.compile(r"^(```+|~~~+)\s*([\w-]*)")


@dataclass(frozen=True)
class DocCommand:
    source: str  # "README.md:27"
    argv: tuple[str, ...]  # without the leading "llmreplay"
    stdout: str | None = None  # "> FILE": where the command's output goes

    @property
    def subcommand(self) -> str:
        words = [a for a in self.argv if not a.startswith("-")]
        if words[:1] == ["perf"] and len(words) > 1:
            return f"perf {words[1]}"
        return words[0] if words else ""

    def __str__(self) -> str:
        return f"{self.source}: llmreplay {shlex.join(self.argv)}"


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of each runnable fenced block."""
    blocks: list[tuple[int, str]] = []
    fence: str | None = None
    lang = ""
    start = 0
    body: list[str] = []
    for no, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line.strip())
        if fence is None and m:
            fence, lang, start, body = m.group(1), m.group(2).lower(), no + 1, []
        elif fence is not None and line.strip().startswith(fence):
            if lang in RUNNABLE_FENCES:
                blocks.append((start, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def commands_in(text: str, source: str) -> list[DocCommand]:
    """Every ``llmreplay ...`` command of the runnable blocks of one markdown text."""
    out: list[DocCommand] = []
    for start, body in runnable_blocks(text):
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            first = i
            chunk = lines[i]
            i += 1
            # a command goes on while a line ends in "\" or a quoted string is still open
            while i < len(lines) and (chunk.rstrip().endswith("\\") or _open_quote(chunk)):
                chunk = (chunk.rstrip()[:-1] if chunk.rstrip().endswith("\\") else chunk + "\n") + lines[i]
                i += 1
            words = shlex.split(chunk, comments=True)
            stdout = None
            if ">" in words[:-1]:  # a redirection of the output to a file
                at = words.index(">")
                stdout, words = words[at + 1], words[:at] + words[at + 2:]
            for prefix in (["llmreplay"], ["python", "-m", "llmreplay"]):
                if words[:len(prefix)] == prefix:
                    out.append(DocCommand(f"{source}:{start + first}", tuple(words[len(prefix):]), stdout))
    return out


def _open_quote(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return True
    return False


def documented_commands(pages: tuple[str, ...] = DOCUMENTED) -> list[DocCommand]:
    cmds: list[DocCommand] = []
    for page in pages:
        path = REPO / page
        cmds += commands_in(path.read_text(encoding="utf-8"), page)
    return cmds


def example_scripts() -> list[Path]:
    return sorted((REPO / "examples").glob("*.sh"))


def make_recipe(target: str) -> list[str]:
    """The shell lines of a Makefile target's recipe (continuations joined)."""
    lines = (REPO / "Makefile").read_text(encoding="utf-8").splitlines()
    recipe: list[str] = []
    inside = False
    for line in lines:
        if re.match(rf"^{re.escape(target)}\s*:", line):
            inside = True
            continue
        if inside:
            if line.startswith("\t"):
                recipe.append(line[1:])
            else:  # a blank line or the next rule ends the recipe
                break
    joined: list[str] = []
    for line in recipe:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    return joined
