"""Start-up is part of every run's time (issue #16: the Python floor of a replay is ~0.2 s of CPU): a plain
``llmreplay run`` of a JSONL trace imports only what it uses — no pyarrow (small JSON traces are parsed in
Python), no pandas, no plotting, no planner, no sweep machinery, no YAML parser, and no ``numpy.ma`` (numpy's
``np.unique``, ``np.percentile`` and float ``np.median`` import it: ~10 ms; the report's percentiles are
:mod:`llmreplay.metrics.quantiles`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

NOT_NEEDED = ("pyarrow", "pandas", "plotly", "yaml", "llmreplay.planner", "llmreplay.sweep", "llmreplay.recommend",
              "llmreplay.baselines.fleet", "llmreplay.report.html", "numpy.ma")


def test_a_plain_run_imports_only_what_it_uses(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code = (
        "import json, sys\n"
        "from llmreplay.cli.app import main\n"
        f"sys.argv = ['llmreplay', 'run', '--demo', '--max-requests', '50', '--quiet', '--no-progress', "
        f"'--report-json', {str(report)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    loaded = [m for m in modules if any(m == name or m.startswith(name + ".") for name in NOT_NEEDED)]
    assert loaded == []
    assert json.loads(report.read_text())["requests"]["completed"] == 50
