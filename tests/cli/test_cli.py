"""The CLI as a user types it: the commands of the README work; bad input exits 2 with one clear paragraph and
no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def llmreplay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmreplay", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_demo_run_prints_the_table_and_writes_reports(tmp_path: Path) -> None:
    out = llmreplay("run", "--demo", "--num-workers", "2", "--sla-ttft-ms", "2000", "--sla-itl-ms", "50",
                    "--report-json", str(tmp_path / "r.json"), "--requests-out", str(tmp_path / "r.parquet"))
    assert out.returncode == 0, out.stderr
    for text in ("Time to First Token (ms)", "Inter Token Latency (ms)", "SLA Attainment", "GPU-hours",
                 "H200 SXM", "KV cache:"):
        assert text in out.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["schema"].startswith("llmreplay.run/1.")
    assert report["requests"]["total"] == 918
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "r.parquet").num_rows == 918


def test_mooncake_run_with_dynamo_engine_args(tmp_path: Path, shared_traces: Path) -> None:
    out = llmreplay("run", str(shared_traces / "mooncake_fast25_conversation_trace.jsonl"), "--num-workers", "4",
                    "--extra-engine-args",
                    '{"aic_system":"h200_sxm","aic_model_path":"nvidia/Llama-3.1-8B-Instruct-FP8","aic_tp_size":1}',
                    "--max-requests", "1500", "--report-json", str(tmp_path / "o.json"), "--requests-out",
                    str(tmp_path / "o.jsonl"), "--quiet")
    assert out.returncode == 0, out.stderr
    lines = (tmp_path / "o.jsonl").read_text().splitlines()
    assert len(lines) == 1500
    assert json.loads(lines[0])["status"] in ("completed", "rejected", "unfinished")


def test_trace_stats_and_synth(tmp_path: Path, shared_traces: Path) -> None:
    out = llmreplay("trace-stats", str(shared_traces / "azure_llm_2023_code.csv"))
    assert out.returncode == 0, out.stderr
    assert "8,819" in out.stdout
    out = llmreplay("synth", "agentic", "--duration", "600", "--rate", "4", "--seed", "1", "-o",
                    str(tmp_path / "agent.jsonl"))
    assert out.returncode == 0, out.stderr
    again = llmreplay("synth", "agentic", "--duration", "600", "--rate", "4", "--seed", "1", "-o",
                      str(tmp_path / "agent2.jsonl"))
    assert again.returncode == 0
    assert (tmp_path / "agent.jsonl").read_bytes() == (tmp_path / "agent2.jsonl").read_bytes()


def test_compare_shows_runs_side_by_side(tmp_path: Path) -> None:
    for n in (1, 2):
        assert llmreplay("run", "--demo", "--num-workers", str(n), "--max-requests", "200", "--quiet",
                         "--report-json", str(tmp_path / f"w{n}.json")).returncode == 0
    out = llmreplay("compare", str(tmp_path / "w1.json"), str(tmp_path / "w2.json"))
    assert out.returncode == 0, out.stderr
    assert "w1" in out.stdout and "w2" in out.stdout and "TTFT p90" in out.stdout


def test_config_file_with_flags_overriding(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("num_workers: 1\nmax_requests: 100\nextra_engine_args:\n  max_num_seqs: 64\n")
    out = llmreplay("run", "--demo", "--config", str(cfg), "--num-workers", "3", "--quiet", "--report-json",
                    str(tmp_path / "c.json"))
    assert out.returncode == 0, out.stderr
    rep = json.loads((tmp_path / "c.json").read_text())
    assert rep["config"]["num_workers"] == 3
    assert rep["config"]["max_requests"] == 100
    assert rep["config"]["extra_engine_args"]["max_num_seqs"] == 64
    assert "report_json" not in rep["config"]


BAD_TRACE_LINES = {
    "bad.jsonl": ('{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}\n{"timestamp": 1, '
                  '"input_length": "ten", "output_length": 5, "hash_ids": [2]}\n', ["bad.jsonl", "2", "input_length"]),
    "broken.jsonl": ('{"timestamp": 0, "input_length": 10, "output_length": 5}\n{"timestamp": \n',
                     ["broken.jsonl", "2"]),
    "empty.jsonl": ("", ["no requests"]),
    "zero.csv": ("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,4808,0\n",
                 ["zero.csv", "2"]),
}


@pytest.mark.parametrize("name", sorted(BAD_TRACE_LINES))
def test_bad_trace_exits_2_naming_file_and_line(tmp_path: Path, name: str) -> None:
    text, needles = BAD_TRACE_LINES[name]
    (tmp_path / name).write_text(text)
    out = llmreplay("run", str(tmp_path / name))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--extra-engine-args", '{"max_num_seq": 4}'], ["unknown key 'max_num_seq'", "max_num_seqs"]),
        (["--extra-engine-args", '{"block_size": "big"}'], ["block_size"]),
        (["--extra-engine-args", '{"aic_system": "h900"}'], ["h900", "h200_sxm"]),
        (["--extra-engine-args", "{not json"], ["--extra-engine-args", "JSON"]),
        (["--router", "fastest"], ["router", "round_robin"]),
        (["--planner-config", '{"ttft": 500, "foo": 1}'], ["unknown key 'foo'", "ttft"]),
        (["--router-config", '{"overlap": 1}'], ["overlap", "overlap_score_weight"]),
        (["--arrival-jitter", "gauss:3"], ["uniform"]),
        (["--num-workers", "0"], ["--num-workers", ">= 1", "got 0"]),
        (["--extra-engine-args", '{"perf_model": {"kind": "constant"}}'], ["step_ms"]),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(args: list[str], needles: list[str]) -> None:
    out = llmreplay("run", "--demo", "--max-requests", "20", *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def test_request_that_never_fits_is_rejected_and_shown(tmp_path: Path) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"timestamp": 0, "input_length": 100, "output_length": 10}\n'
                     '{"timestamp": 5, "input_length": 90000, "output_length": 10}\n')
    out = llmreplay("run", str(trace), "--extra-engine-args", '{"num_gpu_blocks": 1000}',
                    "--report-json", str(tmp_path / "r.json"))
    assert out.returncode == 0, out.stderr
    assert "exceeds_kv_capacity: 1" in out.stdout
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["requests"] == {"total": 2, "completed": 1, "rejected": 1, "unfinished": 0,
                               "rejected_by_reason": {"exceeds_kv_capacity": 1}}


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--num-workers", "2", "--num-prefill-workers", "1"], ["disagg", "--num-workers"]),
        (["--extra-engine-args", "{}", "--decode-engine-args", "{}"], ["disagg", "--extra-engine-args"]),
        (["--prefill-engine-args", '{"worker_type": "decode"}'], ["worker_type", "prefill"]),
        (["--num-prefill-workers", "0"], ["--num-prefill-workers 0", "planner"]),
        (["--num-prefill-workers", "1", "--planner-config", '{"mode": "agg"}'], ["mode", "agg", "disagg"]),
    ],
)
def test_bad_disagg_options_exit_2(args: list[str], needles: list[str]) -> None:
    out = llmreplay("run", "--demo", "--max-requests", "20", *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, out.stderr


def test_agg_and_disagg_side_by_side(tmp_path: Path) -> None:
    assert llmreplay("run", "--demo", "--num-workers", "2", "--quiet", "--report-json",
                     str(tmp_path / "agg.json")).returncode == 0
    out = llmreplay("run", "--demo", "--num-prefill-workers", "1", "--num-decode-workers", "1",
                    "--report-json", str(tmp_path / "disagg.json"))
    assert out.returncode == 0, out.stderr
    assert "Pool prefill" in out.stdout and "Pool decode" in out.stdout
    rep = json.loads((tmp_path / "disagg.json").read_text())
    assert set(rep["pools"]) == {"prefill", "decode"} and rep["config"]["topology"] == "disagg"
    cmp = llmreplay("compare", str(tmp_path / "agg.json"), str(tmp_path / "disagg.json"))
    assert "prefill pool: GPU-hours" in cmp.stdout and "agg pool: GPU-hours" in cmp.stdout
