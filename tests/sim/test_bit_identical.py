"""Speed work must not move a single number: fixed runs give the per-request records they gave before.

Each case replays the bundled demo trace (918 requests, 5 minutes) from the command line and compares a digest
of its ``--requests-out`` file (every request's times, worker, cached tokens, preemptions) and the run's totals
with the values the replay gave before the hot-path optimisations of issue #16 (recorded with the tree before
them). The cases cover the paths the hot loop has: KV routing with prefix caching, preemption under a small KV
cache, round robin without prefix caching, disaggregated prefill/decode with KV transfer, and a fleet that
scales up and down (a scripted schedule, so no planner policy decides); AIC step times (interpolated tables,
when the ``aic`` extra is installed); and the two planner policies deciding (``llmreplay`` agg, ``dynamo`` disagg).

If a change is *meant* to alter the physics, regenerate the digests (``python tests/sim/test_bit_identical.py``
prints them) and say why in the commit; a speed-up never should.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.engine.perf import aic

RUN = ["run", "--demo", "--quiet", "--no-progress"]
SCHEDULE = "t_s,component,replicas\n30,agg,3\n120,agg,1\n200,agg,2\n"
DISAGG_SCHEDULE = "t_s,component,replicas\n40,prefill,2\n60,decode,2\n180,prefill,1\n"

CASES: dict[str, list[str]] = {
    "kv-router-prefix-caching": ["--num-workers", "2"],
    "preemption-small-kv": ["--num-workers", "1", "--extra-engine-args",
                            '{"num_gpu_blocks": 900, "max_num_seqs": 48}'],
    "round-robin-no-prefix-cache": ["--num-workers", "3", "--router", "round_robin", "--extra-engine-args",
                                    '{"enable_prefix_caching": false, "max_num_batched_tokens": 2048}'],
    "disagg": ["--num-prefill-workers", "1", "--num-decode-workers", "1", "--decode-engine-args",
               '{"num_gpu_blocks": 4000}'],
    "aic-round-robin": ["--num-workers", "2", "--router", "round_robin", "--extra-engine-args",
                        '{"aic_backend": "vllm", "aic_system": "h200_sxm", "aic_model_path": "Qwen/Qwen3-8B"}'],
    "scripted-scaling": ["--num-workers", "1", "--extra-engine-args", '{"startup_time": 5}', "--planner-config",
                         '{"policy": "scripted", "schedule": "SCHEDULE"}', "--no-baselines"],
    "scripted-disagg-scaling": ["--num-prefill-workers", "1", "--num-decode-workers", "1", "--planner-config",
                                '{"policy": "scripted", "mode": "disagg", "schedule": "DISAGG_SCHEDULE"}',
                                "--no-baselines"],
    # the planners' own hot paths (FPM logging, regression, load estimates); digests recorded later than the
    # others, equal on the tree before and after the planner speed work of issue #16 (2460c7f and its successor)
    "planner-llmreplay-agg": ["--num-workers", "2", "--planner-config",
                              '{"policy": "llmreplay", "mode": "agg", "ttft": 2000, "itl": 50}', "--no-baselines"],
    "planner-dynamo-disagg": ["--num-prefill-workers", "1", "--num-decode-workers", "1", "--planner-config",
                              '{"policy": "dynamo", "mode": "disagg", "ttft": 2000, "itl": 50, '
                              '"load_predictor": "constant"}', "--no-baselines"],
}

#: (sha256 of the --requests-out JSONL, of the report's metrics block, engine steps, GPU-hours, energy kWh) from
#: the tree before issue #16's hot-path work
EXPECTED: dict[str, tuple[str, str, int, float, float]] = {
    "aic-round-robin": ("f2012dc534065c3337278348ee9cd97a39eac66c144b4386712a2f460c9e29e1",
        "7d99d34265ee3b81", 13326, 0.1881181012211111, 0.11257370402563889),
    "disagg": ("a43720af05732f104e26d67e7498e41a53cbae88f312cdddfb8eaf50f2f66cc5",
        "242084ded2a49d16", 75221, 0.2740062159011111, 0.10706827279449577),
    "kv-router-prefix-caching": ("9754362519f5be5780f1189fe7a2c766119f67097c622086545e469f0b827149",
        "98c29d1663f42f7f", 12894, 0.17545698552333333, 0.10615602133778126),
    "preemption-small-kv": ("89dc1c67efd87eb78f0b9320d5169784cb064dede90107a03970493b7a4647d2",
        "8ee8660e027b2963", 111011, 0.18739296826666668, 0.06595043157599242),
    "round-robin-no-prefix-cache": ("ee5b501ea04b19a72f2a3ace40dd3dab4db8f2d244442edb30877c84b7977e50",
        "577776ee14ab772f", 61924, 0.2546557057175, 0.13230488652714262),
    "scripted-disagg-scaling": ("8080528cca26302d10a95f2dd7cf4b2542091c66e574ba2f063e9508a95dcca2",
        "003e8a995639fb80", 83362, 0.3143503127416667, 0.1397446442272871),
    "planner-dynamo-disagg": ("cafdac1ba7c668960633ce44de071082ad2e65599d08cfdb76cba0a274ec9237",
        "97f4714a4449a1a2", 50494, 0.24431052916111112, 0.12430066440897732),
    "planner-llmreplay-agg": ("68eb767cb090a94ee22077bd944fc9537f0a8c7068a2b4225d27a1efa94c6688",
        "af573bee1981263a", 60791, 0.30300150094083333, 0.1343812093610401),
    "scripted-scaling": ("525dbcd7b2ab19d4f8bf315512318366574e77b7a902cb93b1171a667ddfdbcd",
        "c8088bcdc58dfd70", 18107, 0.19415200957694445, 0.11273314372734543),
}


def replay(name: str, tmp_path: Path) -> tuple[str, str, int, float, float]:
    (tmp_path / "schedule.csv").write_text(SCHEDULE)
    (tmp_path / "disagg_schedule.csv").write_text(DISAGG_SCHEDULE)
    args = [a.replace('"DISAGG_SCHEDULE"', json.dumps(str(tmp_path / "disagg_schedule.csv")))
            .replace('"SCHEDULE"', json.dumps(str(tmp_path / "schedule.csv"))) for a in CASES[name]]
    records, report = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.json"
    res = CliRunner().invoke(app, [*RUN, *args, "--requests-out", str(records), "--report-json", str(report)])
    assert res.exit_code == 0, res.output
    r = json.loads(report.read_text())
    metrics = json.dumps(r["metrics"], sort_keys=True).encode()  # percentiles, token gaps (a histogram), ...
    return (hashlib.sha256(records.read_bytes()).hexdigest(), hashlib.sha256(metrics).hexdigest()[:16],
            r["sim"]["engine_steps"], r["cost"]["gpu_hours"], r["cost"]["energy_kwh"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_replay_gives_the_records_it_gave_before(name: str, tmp_path: Path) -> None:
    if name.startswith("aic") and not aic.aic_available():
        pytest.skip("AIConfigurator not installed (pip install 'llmreplay[aic]')")
    assert replay(name, tmp_path) == EXPECTED[name]


if __name__ == "__main__":  # print the digests of this tree (to regenerate EXPECTED on purpose)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for case in sorted(CASES):
            print(f"    {case!r}: {replay(case, Path(d))!r},", file=sys.stdout)
