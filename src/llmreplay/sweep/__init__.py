"""Sweeps: many replays over a parameter grid, on local processes or Ray, with resume and a chart.

Data flow: ``spec`` (the sweep file) → ``grid`` (points, each validated as a run config) → ``executors``
(run points, stream results) → ``results`` (one table row per point, report files) → ``chart``. ``driver``
ties them together; the CLI (``llmreplay sweep``) only adds the progress bar and the final table.
"""

from llmreplay.sweep.driver import SweepOutcome, run_sweep
from llmreplay.sweep.grid import Point, expand
from llmreplay.sweep.spec import Axis, Sweep, SweepSpec, load_sweep, parse_range

__all__ = ["Axis", "Point", "Sweep", "SweepOutcome", "SweepSpec", "expand", "load_sweep", "parse_range",
           "run_sweep"]
