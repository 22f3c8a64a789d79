"""The numbers behind each chart of the HTML report, and the page assembled around them (no browser)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from reportfixtures import KV_CAPACITY, make_report, real_conv_report
from typer.testing import CliRunner

from llmreplay.cli.app import app
from llmreplay.errors import InputError
from llmreplay.metrics.definitions import SLA_ATTAINMENT
from llmreplay.report import data as rd
from llmreplay.report import figures as rf
from llmreplay.report import page as rp
from llmreplay.report import style as rs
from llmreplay.report import timeaxis as rt
from llmreplay.report.model import RunReport


def R(report: dict[str, Any]) -> RunReport:
    """The typed report the report modules read (the fixtures build its JSON form)."""
    return RunReport.model_validate(report)


@pytest.fixture
def agg_report() -> dict[str, Any]:
    return make_report("agg")


@pytest.fixture
def flapping_report() -> dict[str, Any]:
    return make_report("agg_planner")


@pytest.fixture
def disagg_report() -> dict[str, Any]:
    return make_report("disagg")


@pytest.fixture
def conv_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return real_conv_report(tmp_path_factory.getbasetemp())


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def per_bin(y: np.ndarray) -> list[float]:
    """The per-interval values behind a line drawn by ``step_segments`` (each value appears twice)."""
    return _finite(y)[::2].tolist()


def raw(values: list[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None]


# ------------------------------------------------------------------------------------------------ time axis
def test_elapsed_time_labels_are_clock_times_never_dates() -> None:
    assert rt.format_elapsed(0) == "0:00"
    assert rt.format_elapsed(750) == "12:30"
    assert rt.format_elapsed(3599) == "59:59"
    assert rt.format_elapsed(3600) == "1:00:00"
    assert rt.format_elapsed(86400 + 61) == "24:01:01"
    assert rt.format_elapsed(12.5, step=0.5) == "0:12.5"
    vals, text = rt.time_ticks(0, 3546)
    assert vals[0] == 0 and vals[-1] <= 3546 and 4 <= len(vals) <= rt.MAX_TIME_TICKS
    assert text[:3] == ["0:00", "10:00", "20:00"]
    vals, text = rt.time_ticks(100, 103)
    assert all(re.fullmatch(r"1:4\d\.\d", t) for t in text)


def test_time_axes_all_follow_the_first_and_show_elapsed_time(flapping_report: dict[str, Any]) -> None:
    fig = rf.time_figure(R(flapping_report))
    assert fig is not None
    lay = fig["layout"]
    axes = sorted(k for k in lay if k.startswith("xaxis"))
    assert len(axes) >= 10
    for k in axes:
        assert lay[k].get("type", "linear") != "date"
        assert all(re.fullmatch(r"\d+:\d\d(:\d\d)?", t) for t in lay[k]["ticktext"])
        if k != "xaxis":
            assert lay[k]["matches"] == "x"
    assert lay["xaxis"]["range"] == [0, rd.horizon_s(R(flapping_report))]
    # every trace sits on one of the time axes
    assert {tr["xaxis"] for tr in fig["data"]} <= {"x"} | {f"x{i}" for i in range(2, len(axes) + 1)}


# ------------------------------------------------------------------------------------------------ replicas
@pytest.mark.parametrize("kind", ["agg_planner", "disagg"])
def test_floor_line_equals_the_ticks_floors(kind: str) -> None:
    report = make_report(kind)
    ticks = report["planner"]["ticks"]
    lines = {ln.name: ln for ln in rd.replica_data(R(report))}
    comps = ["decode"] if kind == "agg_planner" else ["prefill", "decode"]
    for comp in comps:
        floor = lines["throughput floor" if kind == "agg_planner" else f"{comp} floor"]
        expected = [(t["t_s"], t[f"floor_{comp}"]) for t in ticks if t[f"floor_{comp}"] is not None]
        assert list(zip(floor.x.tolist(), floor.y.tolist(), strict=True)) == expected
        assert floor.dash == "dash" and floor.shape == "hv"
        reps = lines["workers" if kind == "agg_planner" else f"{comp} replicas"]
        assert reps.y[:-1].tolist() == [t[f"replicas_{comp}"] for t in ticks]
        assert reps.x[-1] == rd.horizon_s(R(report))  # the last count holds to the end
    if kind == "disagg":
        assert lines["prefill replicas"].colour == rs.PREFILL_COLOUR == "#1f3b8c"
        assert lines["decode replicas"].colour == rs.DECODE_COLOUR


def test_no_planner_no_planner_panels(agg_report: dict[str, Any]) -> None:
    assert rd.replica_data(R(agg_report)) == []
    assert rd.decision_data(R(agg_report), "load") == []
    assert rd.capacity_data(R(agg_report)) == []
    keys = [p.key for p in rf.build_panels(R(agg_report))]
    assert not {"replicas", "decisions-load", "decisions-throughput", "capacity"} & set(keys)
    assert "queued_prefill_tokens_max-prefill" not in keys  # no prefill pool in agg: no empty prefill panel
    assert keys[0] == "attainment"
    assert {"ttft", "itl", "rps", "total_kv_tokens_max-agg", "heatmap-agg", "gpus", "gpu-hours", "prefix"} <= set(keys)


def test_disagg_panels(disagg_report: dict[str, Any]) -> None:
    keys = [p.key for p in rf.build_panels(R(disagg_report))]
    for k in ("replicas", "decisions-load", "decisions-throughput", "capacity", "queued_prefill_tokens_max-prefill",
              "total_kv_tokens_max-decode", "heatmap-prefill", "heatmap-decode"):
        assert k in keys


def test_replica_transitions_count_actual_changes(flapping_report: dict[str, Any]) -> None:
    events = flapping_report["planner"]["events"]
    tr = rd.replica_transitions(R(flapping_report))
    changes = [e for e in events if e["from"] != e["to"]]
    assert len(changes) == len(events) - 1  # the fixture adds one non-change
    assert tr.total == len(changes) and tr.up + tr.down == tr.total
    assert tr.up == sum(e["to"] > e["from"] for e in changes)
    # ticks alone (no events list): count the changes between consecutive ticks
    no_events = copy.deepcopy(flapping_report)
    del no_events["planner"]["events"]
    assert rd.replica_transitions(R(no_events)).total == len(changes)


# ------------------------------------------------------------------------------------------------ traffic
@pytest.mark.parametrize("what", ["rps", "isl", "osl"])
def test_predicted_series_connect_their_gaps(flapping_report: dict[str, Any], what: str) -> None:
    lines = {ln.name: ln for ln in rd.traffic_data(R(flapping_report), what)}
    pred = lines["predicted (planner)"]
    ticks = [t for t in flapping_report["planner"]["ticks"] if t[f"predicted_{what}"] is not None]
    assert 0 < len(ticks) < len(flapping_report["planner"]["ticks"])  # the raw series has gaps
    assert pred.x.tolist() == [t["t_s"] for t in ticks]
    assert pred.y.tolist() == [t[f"predicted_{what}"] for t in ticks]
    assert pred.connect_gaps and np.isfinite(pred.y).all()
    obs = lines["observed"]
    key = {"rps": "arrival_rps", "isl": "isl_avg", "osl": "osl_avg"}[what]
    assert per_bin(obs.y) == raw(flapping_report["timeseries"][key])


def test_no_planner_traffic_is_observed_only(agg_report: dict[str, Any]) -> None:
    assert [ln.name for ln in rd.traffic_data(R(agg_report), "rps")] == ["observed"]


# ------------------------------------------------------------------------------------------------ latency
@pytest.mark.parametrize("metric,sla", [("ttft", 2500.0), ("itl", 50.0)])
def test_latency_lines_and_sla(flapping_report: dict[str, Any], metric: str, sla: float) -> None:
    lines = {ln.name: ln for ln in rd.latency_data(R(flapping_report), metric)}
    assert per_bin(lines["observed avg"].y) == raw(flapping_report["timeseries"][f"{metric}_ms_avg"])
    est = lines["planner estimate"]
    assert est.y.tolist() == [t[f"est_{metric}_ms"] for t in flapping_report["planner"]["ticks"]]
    sla_line = lines[f"SLA {sla:,.0f} ms"]
    assert sla_line.y.tolist() == [sla, sla]


def test_outliers_are_cut_and_marked() -> None:
    x = np.arange(100, dtype=float)
    y = np.full(100, 500.0)
    y[-1] = 17_000.0
    clip = rf.clip_outliers([rd.Line("obs", x, y)], floor=2500.0)
    assert clip is not None
    assert clip.top == pytest.approx(2500 * 1.25)
    assert clip.x.tolist() == [99.0] and clip.y.tolist() == [17_000.0]
    assert rf.clip_outliers([rd.Line("obs", x, np.full(100, 500.0))], floor=2500.0) is None
    report = make_report("agg")
    report["timeseries"]["ttft_ms_avg"][-1] = 90_000.0
    panel = next(p for p in rf.build_panels(R(report)) if p.key == "ttft")
    assert panel.yaxis["range"][1] < 90_000.0
    marks = [tr for tr in panel.traces if tr["name"] == "above the chart"]
    assert marks and marks[0]["customdata"] == [90_000.0]  # one mark, in the middle of the last interval
    t, w = report["timeseries"]["t_s"][-1], report["timeseries"]["bin_s"]
    assert marks[0]["x"] == [t + w / 2]


def test_sla_lines_fall_back_to_the_planner_targets() -> None:
    report = make_report("agg_planner", sla=False)
    assert rd.sla_targets(R(report)) == {"ttft_ms": 2500.0, "itl_ms": 50.0, "e2e_ms": None}
    assert rd.attainment_data(R(report)) is None
    assert rd.sla_verdict(R(report)).status == "none"


# ------------------------------------------------------------------------------------------------ engines
def test_total_kv_is_queued_plus_in_flight_and_capacity_is_the_engines_kv(agg_report: dict[str, Any]) -> None:
    load = rd.engine_load_data(R(agg_report), "agg")
    assert load is not None
    assert load.capacity == KV_CAPACITY == agg_report["pools"]["agg"]["kv_capacity_tokens"]
    for e, w in zip(load.engines, agg_report["timeseries"]["pools"]["agg"]["workers"], strict=True):
        kv = np.asarray(w["kv_used_fraction_max"], dtype=float)
        queued = np.asarray(w["queued_prefill_tokens_max"], dtype=float)
        np.testing.assert_allclose(per_bin(e.y), _finite(kv * KV_CAPACITY + queued))
    # a report without the total: the chart adds in-flight (KV fraction × capacity) and queued itself
    older = copy.deepcopy(agg_report)
    for w in older["timeseries"]["pools"]["agg"]["workers"]:
        w["total_kv_tokens_max"] = None
    load2 = rd.engine_load_data(R(older), "agg")
    assert load2 is not None
    for a, b in zip(load.engines, load2.engines, strict=True):
        np.testing.assert_allclose(a.y, b.y)


def test_capacity_line_follows_the_pool(disagg_report: dict[str, Any]) -> None:
    report = copy.deepcopy(disagg_report)
    report["timeseries"]["pools"]["decode"]["kv_capacity_tokens"] = 123_456
    load = rd.engine_load_data(R(report), "decode")
    assert load is not None and load.capacity == 123_456
    queue = rd.engine_load_data(R(report), "prefill", "queued_prefill_tokens_max")
    assert queue is not None and queue.capacity is None
    w0 = report["timeseries"]["pools"]["prefill"]["workers"][0]
    assert per_bin(queue.engines[0].y) == raw(w0["queued_prefill_tokens_max"])


def test_engine_series_cut_to_each_engines_life(flapping_report: dict[str, Any]) -> None:
    load = rd.engine_load_data(R(flapping_report), "agg")
    assert load is not None
    t = np.asarray(flapping_report["timeseries"]["t_s"])
    short = load.engines[2]  # lives for two bins
    w = flapping_report["timeseries"]["bin_s"]
    assert len(per_bin(short.y)) == 2 and short.x[0] == t[2] and short.x[-1] == t[3] + w


def test_per_engine_traces_stay_out_of_the_legend() -> None:
    report = make_report("agg", workers=40)
    fig = rf.time_figure(R(report))
    assert fig is not None
    engines = [tr for tr in fig["data"] if str(tr.get("legendgroup", "")).startswith("engines-")]
    assert len(engines) == 40
    assert sum(bool(tr["showlegend"]) for tr in engines) == 1  # one entry toggles the group
    names = {tr["name"] for tr in fig["data"] if tr.get("showlegend")}
    assert "max over engines" in names and "median engine" in names  # large cluster: the envelope is drawn
    # every panel has its own legend, beside the panel, so no legend ever covers a chart
    legends = [k for k in fig["layout"] if re.fullmatch(r"legend\d*", k)]
    assert all(fig["layout"][k]["x"] > 1 for k in legends)


def test_envelope_downsampling_keeps_spikes() -> None:
    x = np.arange(10_000, dtype=float)
    y = np.sin(x / 500.0)
    y[1234] = 50.0
    y[7777] = -50.0
    y[5000:5100] = np.nan
    dx, dy = rd.envelope_downsample(x, y, 1000)
    assert dx.size <= 1000
    assert 50.0 in dy and -50.0 in dy
    assert np.all(np.diff(dx) > 0)
    small_x, _ = rd.envelope_downsample(x[:10], y[:10], 1000)
    assert small_x is x[:10] or np.array_equal(small_x, x[:10])


def test_long_runs_downsample_per_engine_series() -> None:
    report = make_report("agg", n_bins=3000, bin_s=1.0, workers=2)
    load = rd.engine_load_data(R(report), "agg")
    assert load is not None
    for e, w in zip(load.engines, report["timeseries"]["pools"]["agg"]["workers"], strict=True):
        assert e.x.size <= rd.MAX_SERIES_POINTS
        assert np.nanmax(e.y) == max(v for v in w["total_kv_tokens_max"] if v is not None)


def test_utilization_heatmap_packs_workers_into_slots(flapping_report: dict[str, Any]) -> None:
    hm = rd.utilization_heatmap(R(flapping_report), "agg")
    assert hm is not None
    pool = flapping_report["timeseries"]["pools"]["agg"]
    assert len(pool["workers"]) > hm.lanes
    assert hm.lanes == max(pool["active_workers"])  # never more rows than workers alive at once
    ids = set(_finite(hm.worker.ravel()).astype(int).tolist())
    assert ids == {w["id"] for w in pool["workers"]}
    # each cell is its worker's busy fraction
    by_id = {w["id"]: w["busy_fraction"] for w in pool["workers"]}
    lane, col = np.argwhere(np.isfinite(hm.z))[5]
    assert hm.z[lane, col] == pytest.approx(by_id[int(hm.worker[lane, col])][col])


# ------------------------------------------------------------------------------------------------ decisions
def test_decision_tracks_agg_one_track(flapping_report: dict[str, Any]) -> None:
    tracks = rd.decision_data(R(flapping_report), "load")
    assert [t.label for t in tracks] == ["agg"] and tracks[0].y == 1.0
    pts = tracks[0].points
    n_up = sum(t["reason_load"] == "scale_up" for t in flapping_report["planner"]["ticks"])
    assert pts["scale_up"][0].size == n_up
    assert set(pts["scale_up"][1]) == {1.0 + rs.REASON_OFFSET["scale_up"]}
    assert set(pts["scale_down"][1]) == {1.0 + rs.REASON_OFFSET["scale_down"]}


def test_decision_tracks_disagg_prefill_above_decode(disagg_report: dict[str, Any]) -> None:
    for kind in ("load", "throughput"):
        tracks = {t.label: t for t in rd.decision_data(R(disagg_report), kind)}
        assert tracks["prefill"].y == 2.0 and tracks["decode"].y == 1.0
    thr = {t.label: t for t in rd.decision_data(R(disagg_report), "throughput")}
    assert "partner_not_ready" in thr["decode"].points
    assert set(thr["decode"].points["partner_not_ready"][1]) == {1.0}


def test_reason_colours_are_fixed() -> None:
    assert rd.reason_colour("throughput", "partner_not_ready") == "#e377c2"  # pink
    assert rd.reason_colour("load", "scale_up") == rs.LOAD_REASON_COLOURS["scale_up"]
    a = rd.reason_colour("load", "brand_new_reason", ["brand_new_reason", "another"])
    assert a == rd.reason_colour("load", "brand_new_reason", ["another", "brand_new_reason"])
    fig = rf.time_figure(R(make_report("disagg")))
    assert fig is not None
    colours = {tr["name"]: tr["marker"]["color"] for tr in fig["data"] if tr.get("mode") == "markers"}
    assert colours["partner_not_ready"] == "#e377c2"


def test_all_disabled_decisions_leave_the_panel_out(flapping_report: dict[str, Any]) -> None:
    report = copy.deepcopy(flapping_report)
    for t in report["planner"]["ticks"]:
        t["reason_throughput"] = "disabled"
    assert rd.decision_data(R(report), "throughput") == []
    assert "decisions-throughput" not in [p.key for p in rf.build_panels(R(report))]


# ------------------------------------------------------------------------------------------------ SLA
def test_attainment_per_interval_and_verdict(agg_report: dict[str, Any]) -> None:
    a = rd.attainment_data(R(agg_report))
    assert a is not None
    raw = agg_report["timeseries"]["sla_attainment"]
    assert a.intervals == sum(v is not None for v in raw)
    assert a.intervals_met == sum(v is not None and v >= rd.ATTAINMENT_GOAL for v in raw)
    v = rd.sla_verdict(R(agg_report))
    assert v.status == "missed"  # 88 % < 90 %
    assert SLA_ATTAINMENT.format(agg_report["sla"]["attainment"]) == "87.9 %"
    assert v.headline == "SLA missed: 87.9 % of requests within SLA"
    met = copy.deepcopy(agg_report)
    met["sla"]["attainment"] = 0.95
    assert rd.sla_verdict(R(met)).status == "met"


def test_attainment_just_under_the_goal_never_reads_as_the_goal() -> None:
    assert SLA_ATTAINMENT.format(0.8997) == "89.9 %"
    assert SLA_ATTAINMENT.format(0.9) == "90.0 %"
    assert SLA_ATTAINMENT.format(1.0) == "100.0 %"


def test_cdfs_with_share_within_sla(agg_report: dict[str, Any]) -> None:
    cdfs = {c.metric: c for c in rd.cdf_data(R(agg_report))}
    assert set(cdfs) == {"ttft_ms", "itl_ms", "request_latency_ms"}
    ttft = cdfs["ttft_ms"]
    assert ttft.sla == 2500.0
    # the share within the SLA is the one the metric definitions computed, not read off the 101 quantiles
    assert ttft.within_sla == agg_report["sla"]["within_ttft"]
    assert cdfs["itl_ms"].within_sla == agg_report["sla"]["within_itl"]
    assert cdfs["request_latency_ms"].sla is None and cdfs["request_latency_ms"].within_sla is None


def test_gpu_series_and_cumulative_gpu_hours(disagg_report: dict[str, Any]) -> None:
    g = rd.gpu_data(R(disagg_report))
    assert g is not None
    assert set(g.per_pool) == {"prefill", "decode"}
    assert g.per_pool["decode"][:-1].tolist() == disagg_report["timeseries"]["pools"]["decode"]["gpus"]
    assert np.all(np.diff(g.cumulative_gpu_hours) >= 0)
    assert g.cumulative_gpu_hours[-1] == pytest.approx(disagg_report["cost"]["gpu_hours"])
    assert g.x.size == g.cumulative_gpu_hours.size


def test_prefix_hit_rate(agg_report: dict[str, Any]) -> None:
    lines = rd.prefix_hit_data(R(agg_report))
    assert per_bin(lines[0].y) == raw(agg_report["timeseries"]["prefix_cache_hit_rate"])
    assert lines[1].y.tolist() == [0.21, 0.21]


# ------------------------------------------------------------------------------------------------ page
def test_page_is_self_contained_and_titled(flapping_report: dict[str, Any]) -> None:
    page = rp.render_html(R(flapping_report))
    assert "<script src=" not in page and "cdn.plot.ly" not in page.split("</head>")[0].split("plotly.js v")[0]
    assert "SLA MISSED" in page
    assert "Replica transitions" in page
    for title in ("SLA attainment per interval", "TTFT: observed vs SLA", "Replicas with throughput floors",
                  "Load scaling decisions", "Throughput scaling decisions", "Request rate: observed vs predicted",
                  "Cumulative GPU-hours", "Prefix-cache hit rate", "TTFT CDF"):
        assert title in page
    cdn = rp.render_html(R(flapping_report), plotlyjs="cdn")
    assert '<script src="https://cdn.plot.ly/plotly-' in cdn
    assert len(cdn) < len(page) / 5
    with pytest.raises(InputError):
        rp.render_html(R(flapping_report), plotlyjs="none")


MINIMAL: dict[str, Any] = {"schema": "llmreplay.run/1", "requests": {"total": 0, "completed": 0},
                           "cost": {"gpu_hours": 0.0, "peak_gpus": 0}}


def test_engine_description_flat_or_per_pool() -> None:
    def describe(config: dict[str, Any]) -> str:
        return rd.describe_engines(R({**MINIMAL, "config": config}))

    flat = {"hardware": {"describe": "H200 ×1"}, "perf_model": "roofline"}
    assert describe(flat) == "H200 ×1 · roofline"
    same = {"hardware": {"prefill": {"describe": "H200 ×1"}, "decode": {"describe": "H200 ×1"}},
            "perf_model": {"prefill": "roofline", "decode": "roofline"}}
    assert describe(same) == "H200 ×1 · roofline"
    diff = {"hardware": {"prefill": {"describe": "H200 ×1"}, "decode": {"describe": "H100 ×2"}},
            "perf_model": {"prefill": "roofline", "decode": "aic"}}
    assert describe(diff) == "prefill: H200 ×1 · roofline; decode: H100 ×2 · aic"
    assert describe({}) == ""


def test_report_with_minimal_fields_renders() -> None:
    page = rp.render_html(R(MINIMAL))
    assert "No SLA given" in page and "no time series" in page


def test_user_text_is_escaped(agg_report: dict[str, Any]) -> None:
    report = copy.deepcopy(agg_report)
    report["config"]["trace"] = "/x/<script>alert(1)</script>.jsonl"
    page = rp.render_html(R(report), plotlyjs="cdn")
    assert "<script>alert(1)" not in page


def test_real_conversation_report_is_small(conv_report: dict[str, Any], tmp_path: Path) -> None:
    path = rp.write_html_report(R(conv_report), tmp_path / "conv.html")
    size = path.stat().st_size
    assert size < 8_000_000, size
    keys = [p.key for p in rf.build_panels(R(conv_report))]
    assert "attainment" in keys and "heatmap-agg" in keys and "replicas" not in keys
    v = rd.sla_verdict(R(conv_report))
    assert v.status in ("met", "missed") and SLA_ATTAINMENT.format(conv_report["sla"]["attainment"]) in v.headline
    load = rd.engine_load_data(R(conv_report), "agg")
    assert load is not None and load.capacity == conv_report["pools"]["agg"]["kv_capacity_tokens"]
    g = rd.gpu_data(R(conv_report))
    assert g is not None and g.cumulative_gpu_hours[-1] == pytest.approx(conv_report["cost"]["gpu_hours"], rel=0.02)


# ------------------------------------------------------------------------------------------------ CLI
def test_report_command(flapping_report: dict[str, Any], tmp_path: Path) -> None:
    src = tmp_path / "run.json"
    src.write_text(json.dumps(flapping_report))
    out = tmp_path / "out" / "run.html"
    res = CliRunner().invoke(app, ["report", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and str(out) in res.output.replace("\n", "")
    res = CliRunner().invoke(app, ["report", str(src), "-o", str(tmp_path / "c.html"), "--plotlyjs", "cdn"])
    assert res.exit_code == 0 and (tmp_path / "c.html").stat().st_size < 1_000_000


def test_report_command_bad_input(tmp_path: Path) -> None:
    from llmreplay.cli.report_cmd import execute_report

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        execute_report(bad, tmp_path / "o.html", "inline", console=None)  # type: ignore[arg-type]
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something/1"}))
    with pytest.raises(InputError, match="not an llmreplay run report"):
        execute_report(other, tmp_path / "o.html", "inline", console=None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="--plotlyjs"):
        execute_report(other, tmp_path / "o.html", "svg", console=None)  # type: ignore[arg-type]
