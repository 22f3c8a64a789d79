"""Every command shown in README.md, docs/usage.md and examples/ runs, through the real command line.

The commands are read from the pages themselves (``doc_commands``), so a command added to the docs is tested
without touching this file, and a documented command that fails fails the suite. Long inputs are shortened the
way a user would try a command first: ``run`` gets ``--max-requests`` when it has none, a sweep file gets
``base.max_requests``. ``TRACE`` stands for the bundled demo trace; ``../shared/...`` for the shared traces and
reference runs next to the repository (skipped where they are absent, as the other shared-data tests are).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
import yaml
from doc_commands import (
    DOCUMENTED,
    REPO,
    SHARED,
    SHARED_TRACES,
    DocCommand,
    commands_in,
    documented_commands,
    example_scripts,
    make_recipe,
)

from llmreplay.cli.app import app
from llmreplay.trace import demo_trace_path

#: requests kept from a documented trace when the command does not limit them itself
SHORT_REQUESTS = 300

#: commands CI cannot run, by a substring of the command, with the reason. Keep this short and justified.
SKIP: dict[str, str] = {
    "--address auto": "needs a running Ray cluster to connect to",
}

SHIM = f"""#!{sys.executable}
# `llmreplay` as documented, with long traces shortened: run gets --max-requests {SHORT_REQUESTS} unless given.
import sys
args = sys.argv[1:]
if args[:1] == ["run"] and not any(a.startswith("--max-requests") for a in args):
    args += ["--max-requests", "{SHORT_REQUESTS}"]
sys.argv = ["llmreplay", *args]
if __name__ == "__main__":  # sweep workers re-import this file
    from llmreplay.cli.app import main
    main()
"""


@pytest.fixture(scope="module")
def shim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bin")
    (d / "llmreplay").write_text(SHIM)
    (d / "llmreplay").chmod(0o755)
    return d


def _env(shim_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{shim_dir}{os.pathsep}{env.get('PATH', '')}"
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["TRACES"] = str(SHARED_TRACES)
    env.setdefault("COLUMNS", "130")
    return env


def _workdir(tmp_path: Path) -> Path:
    """A scratch folder where the repository's ``examples/`` resolve as they do from the repository root."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    return tmp_path


def _shared(path: str) -> str:
    """``../shared/...`` (the shared traces and reference runs next to the repository); skip where absent."""
    target = SHARED / path.split("shared/", 1)[1]
    if not target.exists():
        pytest.skip(f"shared data not found at {target}")
    return str(target)


def _short_sweep(path: str, cwd: Path) -> str:
    """A copy of a sweep file with ``base.max_requests`` set and its trace made absolute."""
    src = (cwd / path).resolve()
    spec = yaml.safe_load(src.read_text(encoding="utf-8"))
    base = spec.setdefault("base", {})
    trace = base.get("trace")
    if isinstance(trace, str) and not Path(trace).is_absolute():
        resolved = (src.parent / trace).resolve()
        base["trace"] = _shared(str(resolved)) if "/shared/" in str(resolved) else str(resolved)
    base.setdefault("max_requests", SHORT_REQUESTS)
    out = cwd / "short" / src.name
    out.parent.mkdir(exist_ok=True)
    out.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return str(out)


def _prepare(cmd: DocCommand, cwd: Path) -> list[str]:
    for needle, why in SKIP.items():
        if needle in " ".join(cmd.argv):
            pytest.skip(f"{cmd}: {why}")
    argv: list[str] = []
    for i, arg in enumerate(cmd.argv):
        if arg == "TRACE":
            arg = str(demo_trace_path())
        elif arg.startswith(("../shared/", "shared/")):
            arg = _shared(arg)
        elif cmd.subcommand == "sweep" and i > 0 and cmd.argv[i - 1] == "sweep":
            arg = _short_sweep(arg, cwd)
        argv.append(arg)
    return argv


def _run(argv: list[str], cwd: Path, shim_dir: Path, what: str,
         stdout: str | None = None) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(shim_dir / "llmreplay"), *argv], cwd=cwd, env=_env(shim_dir), capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, f"documented command failed (exit {res.returncode}): {what}\n{res.stderr[-3000:]}"
    assert "Traceback" not in res.stderr, what
    if stdout is not None:
        (cwd / stdout).write_text(res.stdout, encoding="utf-8")
    return res


@pytest.mark.parametrize("page", DOCUMENTED)
def test_every_documented_command_runs(page: str, tmp_path: Path, shim_dir: Path) -> None:
    """The commands of one page run in order in one folder (a later one may read an earlier one's output)."""
    cwd = _workdir(tmp_path)
    cmds = commands_in((REPO / page).read_text(encoding="utf-8"), page)
    assert cmds, f"{page} shows no runnable command"
    for cmd in cmds:
        _run(_prepare(cmd, cwd), cwd, shim_dir, str(cmd), cmd.stdout)


@pytest.mark.parametrize("script", [p.name for p in example_scripts()])
def test_example_scripts_run(script: str, tmp_path: Path, shim_dir: Path) -> None:
    text = (REPO / "examples" / script).read_text(encoding="utf-8")
    if "shared" in text and not SHARED_TRACES.exists():
        pytest.skip(f"shared traces not found at {SHARED_TRACES}")
    cwd = _workdir(tmp_path)
    res = subprocess.run(["bash", str(REPO / "examples" / script), str(tmp_path / "out")], cwd=cwd,
                         env=_env(shim_dir), capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"examples/{script} failed (exit {res.returncode}):\n{res.stderr[-3000:]}"


def test_make_demo_runs(tmp_path: Path, shim_dir: Path) -> None:
    """README's first command: the recipe of `make demo`, run with this checkout (the venv set-up aside)."""
    recipe = [line for line in make_recipe("demo") if "llmreplay" in line]
    assert len(recipe) == 1, recipe
    words = recipe[0].replace("$(BIN)/llmreplay", "llmreplay").split()
    assert words[0] == "llmreplay"
    cwd = _workdir(tmp_path)
    res = _run(words[1:], cwd, shim_dir, "make demo")
    assert "SLA Attainment" in res.stdout
    assert (cwd / "demo_report.json").stat().st_size > 0
    assert (cwd / "demo_report.html").stat().st_size > 0


def test_make_test_runs_lint_types_and_tests() -> None:
    """README's second command. It cannot run inside the suite it runs; check what it runs instead, and that CI
    calls exactly it."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "test"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    for tool in ("ruff check src tests benchmarks", "mypy", "pytest -q"):
        assert tool in dry.stdout, tool
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1].strip() == "make test"


def test_every_subcommand_is_documented_by_a_runnable_command() -> None:
    """A command without a runnable example in the docs would go untested: every subcommand needs one."""
    root = typer.main.get_command(app)
    names: set[str] = set()
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        sub = getattr(command, "commands", None)
        names |= {f"{name} {s}" for s in sub} if sub else {name}
    shown = {c.subcommand for c in documented_commands()}
    for script in example_scripts():
        shown |= {c.subcommand for c in commands_in(f"```bash\n{script.read_text()}\n```", script.name)}
    missing = sorted(names - shown)
    assert not missing, f"no runnable example in {', '.join(DOCUMENTED)} or examples/*.sh for: {missing}"


def test_the_extractor_reads_multi_line_commands() -> None:
    text = """
```
llmreplay run TRACE [options]   # a synopsis: not run
```

```bash
. .venv/bin/activate
llmreplay run TRACE --num-workers 2 \\
    --planner-config '{"mode":"agg",
      "ttft":1500}'   # a comment
llmreplay compare a.json b.json
llmreplay schema > s.json
```
"""
    cmds = commands_in(text, "x.md")
    assert [c.argv for c in cmds] == [
        ("run", "TRACE", "--num-workers", "2", "--planner-config", '{"mode":"agg",\n      "ttft":1500}'),
        ("compare", "a.json", "b.json"),
        ("schema",),
    ]
    assert [c.source for c in cmds] == ["x.md:8", "x.md:11", "x.md:12"]
    assert cmds[-1].stdout == "s.json"
