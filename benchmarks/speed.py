"""Replay speed as ratios to the Python floor, measured in one run (the figures in docs/performance.md).

Every case is the CLI in a fresh process, timed from the parent (process wall time: start-up, imports, trace
load, replay, report); peak RSS comes from that child's own rusage. The floor (``benchmarks/floor.py``: import
numpy, parse the conversation-hour JSONL, push and pop 3 heap events per request) runs before and after the
cases; the ratio uses the median of its runs. Absolute times move 3× between machines and with the load on a
shared one; ratios measured in the same run do not. Cold caches count: the first run of each case is reported,
not a warm best-of. The package's bytecode is compiled first, as ``pip install`` does (an install has it).

    python benchmarks/speed.py                 # every case but the million-request one
    python benchmarks/speed.py --cases plain,planner-agg --repeat 3
    python benchmarks/speed.py --cases million # ~10 minutes on a busy 2-core machine
    python benchmarks/speed.py --against ../before/src  # also each case on another checkout: paired ratios
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRACES = Path(os.environ.get("LLMREPLAY_TRACES", HERE.parents[1] / "shared" / "traces"))
if not TRACES.exists():
    TRACES = Path("/work/shared/traces")
CONV = TRACES / "mooncake_fast25_conversation_trace.jsonl"
AZURE_CONV = TRACES / "azure_llm_2023_conv.csv"
DYNAMO_VENV = Path(os.environ.get("DYNAMO_VENV", Path.home() / ".cache" / "peer-dynamo" / "venv"))
DYNAMO_CLI = TRACES.parent / "reference" / "dynamo-ticks" / "replay_cli.py"
AIC_QWEN = '{"aic_backend":"vllm","aic_system":"h200_sxm","aic_model_path":"Qwen/Qwen3-8B","aic_tp_size":1}'
FP8 = '{"model":"nvidia/Llama-3.1-8B-Instruct-FP8","gpu":"h200_sxm"}'
PLANNER = ('"optimization_target":"sla","ttft":2500,"itl":50,"enable_throughput_scaling":true,'
           '"enable_load_scaling":true,"throughput_adjustment_interval":60,"load_adjustment_interval":5}')
AGG_PLANNER = '{"policy":"llmreplay","mode":"agg",' + PLANNER
DISAGG_PLANNER = '{"policy":"llmreplay","mode":"disagg",' + PLANNER


@dataclass
class Measured:
    wall_s: float
    cpu_s: float  # user + system time of the process: steadier than wall time on a shared machine
    peak_rss_mb: float
    returncode: int
    stderr: str


def run_process(argv: list[str], cwd: str | None = None, src: str | None = None) -> Measured:
    """Run ``argv`` to completion; wall time from the parent, peak RSS from the child's own rusage. ``src``:
    import llmreplay from this ``src`` folder (another checkout) instead of the installed one."""
    env = child_env(src)
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return Measured(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode,
                        err.read().decode(errors="replace")[-2000:])


def child_env(src: str | None = None) -> dict[str, str]:
    """The cases' environment: offline, bytecode caches used as an installed package has them (pip compiles
    them at install time; a shell that sets PYTHONDONTWRITEBYTECODE would make every run compile every module)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["HF_HUB_OFFLINE"] = "1"
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def compile_package(src: str | None = None) -> None:
    """Write the bytecode of the llmreplay package the cases import (from ``src``, or the one installed)."""
    where = subprocess.run([sys.executable, "-c", "import llmreplay, os; print(os.path.dirname(llmreplay.__file__))"],
                           env=child_env(src), capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([sys.executable, "-m", "compileall", "-q", where], env=child_env(src), check=True,
                   stdout=subprocess.DEVNULL)


def floor() -> Measured:
    return run_process([sys.executable, str(HERE / "floor.py"), str(CONV)])


def llmreplay(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmreplay", "run", *args, "--quiet", "--no-progress"]


def million_trace() -> Path:
    """The 1,000,000-request synthetic trace, generated once and kept (generating it takes minutes)."""
    cache = Path(tempfile.gettempdir()) / "llmreplay-bench"
    cache.mkdir(exist_ok=True)
    trace = cache / "poisson_1000000.jsonl"
    if not trace.exists():
        subprocess.run([sys.executable, "-m", "llmreplay", "synth", "poisson", "--num-requests", "1000000",
                        "--rate", "50", "--isl", "lognormal:7,0.8", "--osl", "uniform:20,300", "--seed", "1",
                        "-o", str(trace)], check=True, capture_output=True)
    return trace


def dynamo(*args: str) -> list[str]:
    """Dynamo 1.6.1's replay (Rust mocker, AIC timing) through the peer venv's thin CLI (reference/dynamo-ticks)."""
    return [str(DYNAMO_VENV / "bin" / "python"), str(DYNAMO_CLI), *args]


def cases() -> dict[str, list[str]]:
    plain = [str(CONV), "--num-workers", "4", "--extra-engine-args", FP8]
    return {
        "plain": llmreplay(*plain),
        # the planner starts from the same 4-worker fleet as the plain run
        "planner-agg": llmreplay(*plain, "--planner-config", AGG_PLANNER, "--no-baselines"),
        "planner-disagg": llmreplay(str(CONV), "--num-prefill-workers", "2", "--num-decode-workers", "2",
                                    "--prefill-engine-args", FP8, "--decode-engine-args", FP8,
                                    "--planner-config", DISAGG_PLANNER, "--no-baselines"),
        "azure-conv-4x": llmreplay(str(AZURE_CONV), "--arrival-speedup-ratio", "4", "--num-workers", "4",
                                   "--extra-engine-args", FP8),
        "million": ["MILLION"],  # built lazily: generating the trace takes a while
        # the same plain run on both, AIC timing of Qwen3-8B on H200, round robin (Dynamo's default)
        "dynamo-plain": dynamo(str(CONV), "--num-workers", "4", "--trace-block-size", "512",
                               "--extra-engine-args", AIC_QWEN),
        "llmreplay-plain-aic": llmreplay(str(CONV), "--num-workers", "4", "--router", "round_robin",
                                         "--extra-engine-args", AIC_QWEN),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="plain,planner-agg,planner-disagg,azure-conv-4x",
                        help="comma-separated: plain, planner-agg, planner-disagg, azure-conv-4x, million, "
                             "dynamo-plain and llmreplay-plain-aic (the pair against Dynamo's replay)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case (the first is the cold one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--against", metavar="SRC",
                        help="another checkout's src/ folder (say, the tree before a change): each case also runs "
                             "on it, the two alternately, and the ratios of CPU and wall time are printed")
    args = parser.parse_args()
    table = cases()
    unknown = sorted(set(args.cases.split(",")) - set(table))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    compile_package()
    if args.against:
        compile_package(args.against)
    with tempfile.TemporaryDirectory() as tmpdir:
        floors = [floor() for _ in range(3)]
        rows: dict[str, dict[str, object]] = {}
        for name in args.cases.split(","):
            argv = table[name]
            if argv == ["MILLION"]:
                argv = llmreplay(str(million_trace()), "--num-workers", "8")
            env_cwd = tmpdir if name.startswith("dynamo") else None  # Dynamo writes planner_reports/ here
            runs: list[Measured] = []
            others: list[Measured] = []
            for _ in range(args.repeat):
                if args.against and not name.startswith("dynamo"):
                    others.append(run_process(argv, env_cwd, src=args.against))
                runs.append(run_process(argv, env_cwd))
            for r in runs + others:
                if r.returncode:
                    raise SystemExit(f"{name} failed ({r.returncode}):\n{r.stderr}")
            if others:
                cpu = statistics.mean(r.cpu_s for r in runs) / statistics.mean(r.cpu_s for r in others)
                wall = statistics.mean(r.wall_s for r in runs) / statistics.mean(r.wall_s for r in others)
                print(f"{name}: this tree / {args.against}: CPU {cpu:.2f}×, wall {wall:.2f}× (means of "
                      f"{len(runs)} alternate runs; CPU {[round(r.cpu_s, 2) for r in runs]} s vs "
                      f"{[round(r.cpu_s, 2) for r in others]} s)", flush=True)
            rows[name] = {"walls_s": [round(r.wall_s, 2) for r in runs], "cpu_s": round(runs[0].cpu_s, 2),
                          "peak_rss_mb": round(max(r.peak_rss_mb for r in runs)),
                          "command": " ".join(a if " " not in a else f"'{a}'" for a in argv[2:])}
            print(f"{name}: {[round(r.wall_s, 2) for r in runs]} s", file=sys.stderr, flush=True)
        floors += [floor() for _ in range(2)]
    floor_s = statistics.median(f.wall_s for f in floors)
    floor_cpu = statistics.median(f.cpu_s for f in floors)
    print(f"floor (median of {len(floors)}): {floor_s:.2f} s wall, {floor_cpu:.2f} s CPU; wall runs: "
          f"{[round(f.wall_s, 2) for f in floors]}")
    plain_s = rows["plain"]["walls_s"][0] if "plain" in rows else None  # type: ignore[index]
    for name, row in rows.items():
        walls: list[float] = row["walls_s"]  # type: ignore[assignment]
        first, best = walls[0], min(walls)
        line = (f"{name:15s} first {first:7.2f} s = {first / floor_s:6.1f}× floor   best {best:7.2f} s = "
                f"{best / floor_s:6.1f}× floor   CPU {row['cpu_s']:6.2f} s = {row['cpu_s'] / floor_cpu:5.1f}× floor CPU"  # type: ignore[operator]
                f"   peak RSS {row['peak_rss_mb']} MB")
        if plain_s and name == "planner-agg":
            line += f"   {first / plain_s:.2f}× plain (CPU {row['cpu_s'] / rows['plain']['cpu_s']:.2f}×)"  # type: ignore[operator]
        if name == "llmreplay-plain-aic" and "dynamo-plain" in rows:
            line += f"   {first / rows['dynamo-plain']['walls_s'][0]:.2f}× Dynamo"  # type: ignore[index]
        row["first_over_floor"] = round(first / floor_s, 2)
        row["best_over_floor"] = round(best / floor_s, 2)
        row["cpu_over_floor_cpu"] = round(row["cpu_s"] / floor_cpu, 2)  # type: ignore[operator]
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"floor_s": floor_s, "floor_cpu_s": floor_cpu, "cases": rows}, indent=2))


if __name__ == "__main__":
    main()
