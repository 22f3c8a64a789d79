"""Colours and marker symbols of the HTML report, fixed so two reports read the same."""

from __future__ import annotations

PREFILL_COLOUR = "#1f3b8c"  # dark blue
DECODE_COLOUR = "#d62728"  # red
AGG_COLOUR = "#d62728"  # the agg worker count is reported as replicas_decode: drawn as decode
POOL_COLOURS = {"agg": AGG_COLOUR, "prefill": PREFILL_COLOUR, "decode": DECODE_COLOUR}
OBSERVED_COLOUR = "#17becf"
PREDICTED_COLOUR = "#e6550d"
ESTIMATE_COLOUR = "#9467bd"
SLA_COLOUR = "#444444"
GOOD_COLOUR = "#2ca02c"
BAD_COLOUR = "#d62728"
NEUTRAL_COLOUR = "#555555"

#: fixed colour per planner reason (load and throughput decisions), so two reports read the same
LOAD_REASON_COLOURS = {
    "scale_up": "#2ca02c",
    "scale_down": "#ff7f0e",
    "scale_down_capped_by_throughput": "#8c564b",
    "no_change": "#b8b8b8",
    "no_fpm_data": "#7f7f7f",
    "insufficient_data": "#bcbd22",
    "worker_count_mismatch": "#9467bd",
    "scaling_in_progress": "#17becf",
    "capped_by_gpu_budget": "#8b0000",
    "disabled": "#dddddd",
}
THROUGHPUT_REASON_COLOURS = {
    "set_lower_bound": "#1f77b4",
    "scale": "#2ca02c",
    "no_traffic_data": "#7f7f7f",
    "partner_not_ready": "#e377c2",  # pink, as SPEC §6.3 asks
    "model_not_ready": "#bcbd22",
    "disabled": "#dddddd",
}
#: reasons not known at the time of writing get these, in sorted order of their names
FALLBACK_COLOURS = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354", "#756bb1")
#: where a reason's marker sits on its track (up above, down below) and its symbol
REASON_OFFSET = {"scale_up": 0.22, "scale_down": -0.22, "scale_down_capped_by_throughput": -0.22}
REASON_SYMBOL = {"scale_up": "triangle-up", "scale": "star", "scale_down": "triangle-down",
                 "scale_down_capped_by_throughput": "triangle-down-open", "no_change": "line-ns-open",
                 "set_lower_bound": "diamond", "partner_not_ready": "x", "capped_by_gpu_budget": "square"}
