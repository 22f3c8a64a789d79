"""The results table: one row per point (swept values + flattened report metrics), rewritten as points finish.

The table is rewritten whole and swapped in with ``os.replace``, so a sweep killed at any instant leaves
either the old table or the new one, never half a row; at sweep sizes (tens to thousands of rows) the
rewrite costs milliseconds. Parquet when pyarrow is installed, CSV otherwise.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmreplay.errors import InputError
from llmreplay.fileio import atomic_write, read_text
from llmreplay.report.model import RunReport, parse_report
from llmreplay.sweep.executors import PointResult
from llmreplay.sweep.grid import Point
from llmreplay.sweep.spec import Axis, canonical_json

#: column → where it sits in the typed run report (SPEC §6.2; :mod:`llmreplay.report.model`)
METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((f"{m}.{s}", ("metrics", m, s)) for m in ("ttft_ms", "itl_ms", "request_latency_ms")
      for s in ("avg", "p50", "p90", "p99")),
    ("request_throughput_rps", ("metrics", "request_throughput_rps")),
    ("output_token_throughput_tps", ("metrics", "output_token_throughput_tps")),
    ("prefix_cache_hit_rate", ("metrics", "prefix_cache_hit_rate")),
    *((f"sla.{k}", ("sla", k)) for k in ("ttft_ms", "itl_ms", "e2e_ms", "attainment", "goodput_rps", "within_ttft",
                                         "within_itl")),
    *((f"cost.{k}", ("cost", k)) for k in ("gpu_hours", "energy_kwh", "joules_per_output_token", "peak_gpus",
                                           "replica_transitions", "reversals")),
    *((f"requests.{k}", ("requests", k)) for k in ("total", "completed", "rejected", "unfinished")),
    ("sim.simulated_s", ("sim", "simulated_s")),
    ("sim.wall_s", ("sim", "wall_s")),
)
#: wall-clock columns: the only ones that differ between two runs of the same sweep
WALL_COLUMNS = ("sim.wall_s",)
#: columns that are text even when they look like numbers (a CSV read must not turn an id into an int)
TEXT_COLUMNS = ("id", "status", "error", "config_hash")


def axis_cells(axes: tuple[Axis, ...]) -> dict[str, Callable[[Any], Any]]:
    """How each axis value goes into a table cell: as itself when the axis is all numbers, all strings or all
    booleans (so the column has one type), else as JSON text (e.g. a perf_model axis mixing names and objects)."""
    cells: dict[str, Callable[[Any], Any]] = {}
    for a in axes:
        kinds = {_kind(v) for v in a.values}
        cells[a.path] = (lambda v: v) if len(kinds) == 1 and None not in kinds else canonical_json
    return cells


def _kind(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "str"
    return None


def make_row(point: Point, result: PointResult, cells: dict[str, Callable[[Any], Any]]) -> dict[str, Any]:
    """One table row: the point, its swept values, status/error, and the report's headline metrics."""
    report = (parse_report(json.loads(result.report_json), f"sweep point {point.id}")
              if result.report_json is not None else None)
    row: dict[str, Any] = {"point": point.index, "id": point.id}
    for path, value in point.overrides.items():
        row[path] = cells[path](value)
    row.update(repeat=point.repeat, seed=point.seed, status=result.status, error=result.error)
    for col, where in METRICS:
        row[col] = _get(report, where)
    if report is None:
        row["sim.wall_s"] = result.wall_s
    row["config_hash"] = point.config_hash
    return row


def _get(report: RunReport | None, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in the typed report (None when the point has no report)."""
    value: Any = report
    for k in path:
        if value is None:
            return None
        value = getattr(value, k)
    return value


class ResultStore:
    """``OUT/results.parquet`` (or ``.csv``) plus ``OUT/points/<id>.json``."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.points_dir = out_dir / "points"
        self.parquet = have_pyarrow()
        self.path = out_dir / ("results.parquet" if self.parquet else "results.csv")

    def load(self) -> list[dict[str, Any]]:
        """Rows of an earlier run into the same folder (either format), or none."""
        pq_path, csv_path = self.out_dir / "results.parquet", self.out_dir / "results.csv"
        if self.parquet and pq_path.exists():
            import pyarrow.parquet as pq

            try:
                return list(pq.read_table(pq_path).to_pylist())
            except Exception as exc:
                raise InputError(f"{pq_path}: cannot read the results of the earlier run ({exc}); move it "
                                 "away or use another --out.") from None
        if csv_path.exists():
            return read_csv(csv_path)
        return []

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Replace the table with ``rows`` atomically (a uniquely named temporary file, then a rename)."""
        columns = list(dict.fromkeys(k for r in rows for k in r))
        if self.parquet:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            atomic_write(self.path, sink.getvalue().to_pybytes(), "sweep results table")
        else:
            text = io.StringIO(newline="")
            w = csv.DictWriter(text, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)
            atomic_write(self.path, text.getvalue(), "sweep results table")

    def write_point(self, point_id: str, report_json: str) -> Path:
        """The point's report, atomically too: a JSON file present is always a whole report."""
        return atomic_write(self.points_dir / f"{point_id}.json", report_json, "sweep point report")


def have_pyarrow() -> bool:
    return importlib.util.find_spec("pyarrow") is not None


def read_csv(path: Path) -> list[dict[str, Any]]:
    """CSV rows with numbers parsed back (empty cell → None), text columns left as text."""
    text = read_text(path, "sweep results table")
    try:
        return [{k: _cell(k, v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the results of the earlier run ({exc}); move it away or use "
                         "another --out.") from None


def _cell(column: str, text: str) -> Any:
    if text == "":
        return None
    if column in TEXT_COLUMNS:
        return text
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return text


HtmlWriter = Callable[[dict[str, Any], Path], object]


def html_writer() -> HtmlWriter:
    """The HTML run-report writer (SPEC §6.3; ``llmreplay.report.html.write_html_report``), looked up when a sweep
    asks for ``report_html``, so a version without it fails before the first point rather than at it."""
    try:
        module = importlib.import_module("llmreplay.report.html")
        writer: HtmlWriter = module.write_html_report
    except (ImportError, AttributeError):
        raise InputError("report_html: this version of llmreplay has no HTML run report; remove "
                         "'report_html: true' from the sweep file.") from None
    return writer
