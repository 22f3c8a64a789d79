"""How much does Dynamo 1.6.1's closed loop agree with itself? Tiny perturbations, replica timelines compared.

Issue #11 asks llmreplay's ``policy: dynamo`` to reproduce Dynamo's replica-count timeline on the Mooncake
conversation hour (same count >= 80 % of the time, changes within 20 %, GPU-hours within 5 %). Dynamo's SLA
planner flaps, so a bar on the shared timeline is only reachable if Dynamo itself reproduces its timeline when
its inputs move by less than any twin can hope to match. This script measures that: it replays perturbed copies
of the trace through Dynamo's own closed loop (the peer venv, ``replay_cli.py`` of the shared reference runs) and
compares each run's timeline with the reference run's; then does the same for llmreplay (``policy: dynamo`` with
the engine args of ``benchmarks/test_bench_dynamo_closed_loop.py``) against its own unperturbed run.

Perturbations (each one run per topology):

- ``rerun#1``-``rerun#3``: the unchanged inputs (is Dynamo reproducible run to run?);
- ``shift+1ms``: every arrival 1 ms later;
- ``jitter±1ms/s1`` … ``/s4``: each arrival moved by a seeded uniform draw in [-1, +1] ms (clamped at
  0; the file is re-sorted by time, stably, so both tools read the same order). This trace arrives in bursts
  of up to 28 requests with one timestamp, so this also reorders requests within a burst;
- ``jitter<1ms,kept/s1``, ``/s2``: each arrival moved later by less than 1 ms, file order kept;
- ``osl+1@100``: the 100th request (line 100) asks for one more output token;
- ``step×1.001``, ``step×0.999`` (Dynamo only): every mocker pass 0.1 % longer or shorter (engine arg
  ``speedup_ratio`` = 1/1.001 or 1/0.999; the mocker divides each modelled duration by it,
  ``modeled_duration_ms``).

Run with llmreplay's venv (not in the test suite: the peer venv is not in CI; each Dynamo run takes ~40-90 s
and ~1 GB here, llmreplay's a few seconds; runs are sequential and ``nice``)::

    PYTHONPATH=src .venv/bin/python scripts/dynamo_sensitivity.py [--modes agg disagg] [--only NAME ...]
        [--skip-dynamo] [--skip-llmreplay] [--work-dir /tmp/dynamo-sensitivity] [--json OUT.json] [--markdown]

It prints a line per run and component (changes, same-count share and first divergence against the base run,
GPU-hours; for llmreplay also the same-count share against Dynamo's run on the same perturbed input) and, per
topology, an ensemble line: the reference and the runs perturbed in ways no twin can match (jitter, step time)
taken as equally valid Dynamo runs, how much they agree pairwise, and how much llmreplay's unperturbed run
agrees with each; ``--markdown`` then prints the two tables of docs/validation.md ("How much does Dynamo agree
with itself?"). Runs are cached in the work dir (Dynamo's reports gzipped, llmreplay's events) and reused on
the next call (``--force`` reruns them).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations, groupby
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from test_bench_dynamo_closed_loop import REFERENCE, TRACE, TRACE_BLOCK, planner, run_config  # noqa: E402
from timelines import Segment, first_divergence, same_share, timeline  # noqa: E402

PEER = Path(os.environ.get("DYNAMO_PEER_VENV", "/root/.cache/peer-dynamo/venv"))
#: the reference runs' engine args (README of the shared reference runs), in replay_cli.py's flat form
DYNAMO_ENGINE = {"aic_backend": "vllm", "aic_system": "h200_sxm", "aic_model_path": "meta-llama/Meta-Llama-3.1-8B",
                 "aic_tp_size": 1}
Rows = list[dict[str, Any]]


def shifted(rows: Rows) -> Rows:
    return [{**r, "timestamp": r["timestamp"] + 1} for r in rows]


def jittered(seed: int) -> Callable[[Rows], Rows]:
    def apply(rows: Rows) -> Rows:
        rng = random.Random(seed)
        moved = [{**r, "timestamp": max(0.0, r["timestamp"] + rng.uniform(-1.0, 1.0))} for r in rows]
        return sorted(moved, key=lambda r: r["timestamp"])  # stable: ties keep file order

    return apply


def jittered_in_order(seed: int) -> Callable[[Rows], Rows]:
    """Each arrival moved later by a seeded uniform draw in [0, 1) ms, the draws sorted within each group of
    equal timestamps so that the file order (and so round robin's assignment) is kept: timing without reordering
    (this trace's distinct timestamps are whole milliseconds apart, so groups cannot overtake one another)."""
    def apply(rows: Rows) -> Rows:
        rng = random.Random(seed)
        out: Rows = []
        for _, group in groupby(rows, key=lambda r: r["timestamp"]):
            members = list(group)
            draws = sorted(rng.random() for _ in members)
            out += [{**r, "timestamp": r["timestamp"] + u} for r, u in zip(members, draws, strict=True)]
        return out

    return apply


def longer_output(line: int) -> Callable[[Rows], Rows]:
    def apply(rows: Rows) -> Rows:
        out = list(rows)
        out[line - 1] = {**rows[line - 1], "output_length": rows[line - 1]["output_length"] + 1}
        return out

    return apply


def unchanged(rows: Rows) -> Rows:
    return rows


@dataclass(frozen=True)
class Perturbation:
    group: str  # the row of the Markdown table it is reported in
    transform: Callable[[Rows], Rows]
    dynamo_engine: dict[str, float] = field(default_factory=dict)  # engine args added for Dynamo's runs
    llmreplay_too: bool = True  # llmreplay runs it as well (a trace perturbation)
    ensemble: bool = False  # an equally valid Dynamo run: its timeline is one a twin could be compared with


RERUN, JITTER = "rerun ×3; all arrivals +1 ms", "arrivals ±1 ms, seeds 1-4"
KEPT, OSL = "arrivals +0-1 ms, order kept, seeds 1-2", "request 100: +1 output token"
STEP = "mocker passes ×1.001, ×0.999"
PERTURBATIONS: dict[str, Perturbation] = {
    **{f"rerun#{i}": Perturbation(RERUN, unchanged, llmreplay_too=False) for i in (1, 2, 3)},
    "shift+1ms": Perturbation(RERUN, shifted),
    **{f"jitter±1ms/s{seed}": Perturbation(JITTER, jittered(seed), ensemble=True) for seed in (1, 2, 3, 4)},
    **{f"jitter<1ms,kept/s{seed}": Perturbation(KEPT, jittered_in_order(seed), ensemble=True) for seed in (1, 2)},
    "osl+1@100": Perturbation(OSL, longer_output(100)),
    "step×1.001": Perturbation(STEP, unchanged, {"speedup_ratio": 1 / 1.001}, llmreplay_too=False, ensemble=True),
    "step×0.999": Perturbation(STEP, unchanged, {"speedup_ratio": 1 / 0.999}, llmreplay_too=False, ensemble=True),
}
Events = dict[str, list[tuple[float, int]]]  # component -> [(at_s, to_count)]


def planner_config(mode: str) -> dict[str, Any]:
    """The benchmark's planner config minus our ``policy`` key (Dynamo knows no such key)."""
    return {k: v for k, v in planner(mode).items() if k != "policy"}


def perturbed_trace(rows: Rows, transform: Callable[[Rows], Rows], path: Path) -> Path:
    """The trace file a run reads: the shared trace itself when the perturbation leaves it unchanged."""
    if transform is unchanged:
        return TRACE
    path.write_text("".join(json.dumps(r) + "\n" for r in transform(rows)))
    return path


def run_dynamo(mode: str, trace: Path, extra_engine: dict[str, float], out: Path) -> dict[str, Any]:
    """One closed-loop replay by Dynamo 1.6.1: its report (gzipped at ``out``, reused when present)."""
    if not out.exists():
        engine = json.dumps({**DYNAMO_ENGINE, **extra_engine})
        if mode == "agg":
            topo = ["--num-workers", "2", "--extra-engine-args", engine]
        else:
            topo = ["--num-prefill-workers", "1", "--num-decode-workers", "1",
                    "--prefill-engine-args", engine, "--decode-engine-args", engine]
        scratch = out.parent / ("scratch-" + out.name.split(".")[0])
        scratch.mkdir(exist_ok=True)  # Dynamo writes planner_reports/ into its working directory
        raw = scratch / "report.json"
        cmd = ["nice", str(PEER / "bin" / "python"), str(REFERENCE / "replay_cli.py"), str(trace), *topo,
               "--trace-block-size", str(TRACE_BLOCK), "--planner-config", json.dumps(planner_config(mode)),
               "--sla-ttft-ms", "2500", "--sla-itl-ms", "50", "--report-json", str(raw)]
        with (scratch / "dynamo.log").open("w") as log:  # Dynamo logs every tick; kept for a failed run
            subprocess.run(cmd, cwd=scratch, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=True,
                           stdout=log, stderr=subprocess.STDOUT)
        report = json.loads(raw.read_bytes())
        report.pop("per_request", None)
        out.write_bytes(gzip.compress(json.dumps(report).encode()))
        raw.unlink()
    return dict(json.loads(gzip.decompress(out.read_bytes())))


def dynamo_run(report: dict[str, Any]) -> tuple[Events, float]:
    """A Dynamo report's scaling events and GPU-hours."""
    events: Events = {}
    for e in report["planner"]["scaling_events"]:
        events.setdefault(e["component"], []).append((e["at_s"], e["to_count"]))
    return events, float(report["summary"]["gpu_hours"])


def run_llmreplay(mode: str, trace: Path, out: Path) -> tuple[Events, float]:
    """One closed-loop replay by llmreplay, ``policy: dynamo``, the benchmark's aligned engine args: its scaling
    events and GPU-hours (cached at ``out``)."""
    if not out.exists():
        from llmreplay.config import build_run_config
        from llmreplay.runner import run

        cfg = {**run_config(mode), "trace": str(trace)}
        report = run(build_run_config(cfg)).report
        events: Events = {}
        for e in report["planner"]["events"]:
            events.setdefault(e["component"], []).append((e["t_s"], e["to"]))
        out.write_text(json.dumps({"events": events, "gpu_hours": report["cost"]["gpu_hours"]}))
    cached = json.loads(out.read_text())
    return {c: [(at, to) for at, to in es] for c, es in cached["events"].items()}, float(cached["gpu_hours"])


def compare(base: Events, other: Events, starts: dict[str, int], horizon: float) -> dict[str, dict[str, Any]]:
    """Per component: changes (other's and base's, before the horizon), same-count share, first divergence."""
    out = {}
    for comp, start in starts.items():
        a = timeline(start, base.get(comp, []), horizon)
        b = timeline(start, other.get(comp, []), horizon)
        out[comp] = {"changes": sum(at < horizon for at, _ in other.get(comp, [])),
                     "base_changes": sum(at < horizon for at, _ in base.get(comp, [])),
                     "same_count_share": same_share(a, b, horizon), "first_divergence_s": first_divergence(a, b)}
    return out


def spread(values: list[float]) -> str:
    return f"{min(values):.3g} / {statistics.median(values):.3g} / {max(values):.3g}"


def bars_met(comp: str, dynamo: dict[str, tuple[Events, float]], lines: dict[str, list[Segment]],
             horizon: float) -> dict[str, int]:
    """How many perturbed Dynamo runs meet each bar of issue #11 against the reference run (changes within
    20 %, GPU-hours within 5 %, same count >= 80 % of the time)."""
    ref_events, ref_hours = dynamo["reference"]
    ref_changes = sum(at < horizon for at, _ in ref_events.get(comp, []))
    others = [name for name in dynamo if name != "reference"]
    changes = [sum(at < horizon for at, _ in dynamo[name][0].get(comp, [])) for name in others]
    return {"runs": len(others),
            "changes": sum(abs(c - ref_changes) <= 0.2 * ref_changes for c in changes),
            "gpu_hours": sum(abs(dynamo[name][1] - ref_hours) <= 0.05 * ref_hours for name in others),
            "same_count": sum(same_share(lines["reference"], lines[name], horizon) >= 0.8 for name in others)}


def ensemble_summary(mode: str, dynamo: dict[str, tuple[Events, float]], ours: tuple[Events, float] | None,
                     starts: dict[str, int], horizon: float) -> list[dict[str, Any]]:
    """How much equally valid Dynamo runs (the reference and the ``ensemble`` perturbations) agree with one
    another, and how much llmreplay's unperturbed run agrees with each of them: min / median / max."""
    out = []
    for comp, start in starts.items():
        lines = {name: timeline(start, ev.get(comp, []), horizon) for name, (ev, _) in dynamo.items()}
        pairs = [same_share(lines[a], lines[b], horizon) for a, b in combinations(lines, 2)]
        row: dict[str, Any] = {
            "mode": mode, "component": comp, "dynamo_runs": len(lines),
            "changes": [sum(at < horizon for at, _ in ev.get(comp, [])) for ev, _ in dynamo.values()],
            "gpu_hours": [h for _, h in dynamo.values()], "dynamo_pairwise_same_count": pairs,
            "bars_met": bars_met(comp, dynamo, lines, horizon)}
        if ours is not None:
            mine = timeline(start, ours[0].get(comp, []), horizon)
            row["llmreplay_vs_dynamo_same_count"] = [same_share(mine, line, horizon) for line in lines.values()]
            row["llmreplay_changes"] = sum(at < horizon for at, _ in ours[0].get(comp, []))
            row["llmreplay_gpu_hours"] = ours[1]
        out.append(row)
        print(f"ensemble  {mode:6} {comp:7} {len(lines)} Dynamo runs: changes {spread(row['changes'])}, "
              f"GPU-h {spread(row['gpu_hours'])}, same count pairwise {spread(pairs)}"
              + (f"; llmreplay vs each: same count {spread(row['llmreplay_vs_dynamo_same_count'])}"
                 if ours is not None else ""), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", nargs="+", default=["agg", "disagg"], choices=["agg", "disagg"])
    ap.add_argument("--only", nargs="+", choices=list(PERTURBATIONS), help="run only these perturbations")
    ap.add_argument("--skip-dynamo", action="store_true")
    ap.add_argument("--skip-llmreplay", action="store_true")
    ap.add_argument("--force", action="store_true", help="rerun even when a cached run exists")
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/dynamo-sensitivity"))
    ap.add_argument("--json", type=Path, help="also write the tables as JSON here")
    ap.add_argument("--markdown", action="store_true", help="also print the tables of docs/validation.md")
    args = ap.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    if args.force:
        for cached in [*args.work_dir.glob("dynamo-*.report.json.gz"), *args.work_dir.glob("llmreplay-*.json")]:
            cached.unlink()
    rows = [json.loads(line) for line in TRACE.read_text().splitlines()]
    names = args.only or list(PERTURBATIONS)
    results: list[dict[str, Any]] = []
    ensembles: list[dict[str, Any]] = []
    for mode in args.modes:
        ref = json.loads(gzip.decompress((REFERENCE / f"conv_{mode}.report.json.gz").read_bytes()))
        horizon = max(t["at_ms"] for t in ref["planner"]["ticks"]) / 1000
        starts = {"agg": 2} if mode == "agg" else {"prefill": 1, "decode": 1}
        reference = dynamo_run(ref)
        ensemble = {"reference": reference}
        dynamo_runs: dict[str, Events] = {}
        if not args.skip_dynamo:
            for name in names:
                p = PERTURBATIONS[name]
                trace = perturbed_trace(rows, p.transform, args.work_dir / f"{safe(name)}.jsonl")
                events, hours = dynamo_run(run_dynamo(mode, trace, p.dynamo_engine,
                                                      args.work_dir / f"dynamo-{mode}-{safe(name)}.report.json.gz"))
                dynamo_runs[name] = events
                if p.ensemble:
                    ensemble[name] = (events, hours)
                results.append({"tool": "dynamo", "mode": mode, "perturbation": name, "gpu_hours": hours,
                                "base_gpu_hours": reference[1], **compare(reference[0], events, starts, horizon)})
                show(results[-1])
        ours = None
        if not args.skip_llmreplay:
            ours = run_llmreplay(mode, TRACE, args.work_dir / f"llmreplay-{mode}-base.json")
            unperturbed = {"tool": "llmreplay", "mode": mode, "perturbation": "unperturbed", "gpu_hours": ours[1],
                           "base_gpu_hours": ours[1], **compare(ours[0], ours[0], starts, horizon)}
            for comp, c in compare(reference[0], ours[0], starts, horizon).items():
                unperturbed[comp]["same_count_vs_dynamo"] = c["same_count_share"]
            results.append(unperturbed)
            for name in names:
                p = PERTURBATIONS[name]
                if not p.llmreplay_too:
                    continue
                trace = perturbed_trace(rows, p.transform, args.work_dir / f"{safe(name)}.jsonl")
                events, hours = run_llmreplay(mode, trace, args.work_dir / f"llmreplay-{mode}-{safe(name)}.json")
                row = {"tool": "llmreplay", "mode": mode, "perturbation": name, "gpu_hours": hours,
                       "base_gpu_hours": ours[1], **compare(ours[0], events, starts, horizon)}
                if name in dynamo_runs:  # the twin against Dynamo on the same perturbed input
                    for comp, c in compare(dynamo_runs[name], events, starts, horizon).items():
                        row[comp]["same_count_vs_dynamo"] = c["same_count_share"]
                results.append(row)
                show(results[-1])
        ensembles += ensemble_summary(mode, ensemble, ours, starts, horizon)
        results.append({"tool": "dynamo", "mode": mode, "perturbation": "unperturbed", "gpu_hours": reference[1],
                        "base_gpu_hours": reference[1], **compare(reference[0], reference[0], starts, horizon)})
    if args.json:
        args.json.write_text(json.dumps({"runs": results, "ensembles": ensembles}, indent=1))
    if args.markdown:
        print("\n" + markdown(results, ensembles))


def _pct(share: float) -> str:
    """A share as the docs show it: whole percent, one decimal from 99.5 % up (so 99.6 % is not "100 %")."""
    return "100 %" if share == 1 else f"{share * 100:.1f} %" if share >= 0.995 else f"{share * 100:.0f} %"


def _cell(values: list[str]) -> str:
    """Values of one group's runs, comma-separated; one value when they all agree."""
    return values[0] if len(set(values)) == 1 else ", ".join(values)


def _group_runs(results: list[dict[str, Any]], tool: str, mode: str, comp: str, group: str) -> list[dict[str, Any]]:
    """One tool's runs of one table row (a perturbation group, or "unperturbed") for one topology."""
    def in_group(name: str) -> bool:
        return name == group if group == "unperturbed" else name in PERTURBATIONS and PERTURBATIONS[name].group == group

    return [r for r in results if r["tool"] == tool and r["mode"] == mode and comp in r and in_group(r["perturbation"])]


def markdown(results: list[dict[str, Any]], ensembles: list[dict[str, Any]]) -> str:
    """The two tables of docs/validation.md ("How much does Dynamo agree with itself?")."""
    def cells(runs: list[dict[str, Any]], comp: str, vs_dynamo: bool) -> list[str]:
        if not runs:
            return [""] * (5 if vs_dynamo else 4)
        c = [r[comp] for r in runs]
        perturbed = runs[0]["perturbation"] != "unperturbed"
        out = [_cell([str(x["changes"]) for x in c]), _cell([f"{r['gpu_hours']:.2f}" for r in runs]),
               _cell([_pct(x["same_count_share"]) for x in c]) if perturbed else "",
               _cell(["never" if x["first_divergence_s"] is None else f"{x['first_divergence_s']:,.0f} s"
                      for x in c]) if perturbed else ""]
        if vs_dynamo:
            out.append(_cell([_pct(x["same_count_vs_dynamo"]) for x in c if "same_count_vs_dynamo" in x] or [""]))
        return out

    lines = ["| perturbation | Dynamo: changes | GPU-h | same count | diverges at | llmreplay: changes | GPU-h | "
             "same count | diverges at | llmreplay vs Dynamo, same input |", "|---|" + "---:|" * 9]
    groups = ["unperturbed", *dict.fromkeys(p.group for p in PERTURBATIONS.values())]
    for mode, comp in (("agg", "agg"), ("disagg", "prefill")):
        for group in groups:
            dyn, ours = (_group_runs(results, tool, mode, comp, group) for tool in ("dynamo", "llmreplay"))
            if dyn or ours:
                label = f"**{mode}**, unperturbed" if group == "unperturbed" else group
                lines.append("| " + " | ".join([label, *cells(dyn, comp, False), *cells(ours, comp, True)]) + " |")
    lines += ["", "| | agg | disagg prefill |", "|---|---:|---:|"]
    by = {e["component"]: e for e in ensembles}

    def spread_row(label: str, key: str, fmt: Callable[[float], str]) -> str:
        cols = []
        for comp in ("agg", "prefill"):
            v = by.get(comp, {}).get(key)
            cols.append(" / ".join(fmt(x) for x in (min(v), statistics.median(v), max(v))) if v else "")
        return f"| {label} | " + " | ".join(cols) + " |"

    def pct(share: float) -> str:
        return _pct(share).removesuffix(" %")

    lines += [spread_row("Dynamo: replica changes, min / median / max", "changes", lambda x: f"{x:.0f}"),
              spread_row("Dynamo: GPU-hours, min / median / max", "gpu_hours", lambda x: f"{x:.2f}"),
              spread_row("Dynamo vs Dynamo, same count, all pairs, min / median / max (%)",
                         "dynamo_pairwise_same_count", pct),
              spread_row("llmreplay (unperturbed) vs each Dynamo run, same count, min / median / max (%)",
                         "llmreplay_vs_dynamo_same_count", pct)]
    met = [by[c]["bars_met"] if c in by else None for c in ("agg", "prefill")]
    lines.insert(-1, "| perturbed Dynamo runs meeting the bars against the reference (changes / GPU-h / same count) | "
                 + " | ".join(f"{m['changes']} / {m['gpu_hours']} / {m['same_count']} of {m['runs']}" if m else ""
                              for m in met) + " |")
    return "\n".join(lines)


def safe(name: str) -> str:
    """A file name for a perturbation's name."""
    for char, text in (("±", "pm"), ("×", "x"), ("/", "-"), ("@", "at"), ("+", "p"), ("#", "-"),
                       ("<", "lt"), (",", "-")):
        name = name.replace(char, text)
    return name


def show(r: dict[str, Any]) -> None:
    """One table line per component: changes (base), same-count share, first divergence, GPU-hours (base), and
    for llmreplay the same-count share against Dynamo's run on the same perturbed input."""
    for comp, c in r.items():
        if not isinstance(c, dict):
            continue
        first = "never" if c["first_divergence_s"] is None else f"{c['first_divergence_s']:.0f} s"
        print(f"{r['tool']:9} {r['mode']:6} {r['perturbation']:14} {comp:7} changes {c['changes']:4} "
              f"({c['base_changes']:4})  same count {c['same_count_share']:6.1%}  first divergence {first:>7}  "
              f"GPU-h {r['gpu_hours']:.3f} ({r['base_gpu_hours']:.3f})"
              + (f"  same count vs Dynamo, same input {c['same_count_vs_dynamo']:6.1%}"
                 if "same_count_vs_dynamo" in c else ""), flush=True)


if __name__ == "__main__":
    main()
