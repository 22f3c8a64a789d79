"""Dynamo's GPU budget band (``dynamo/planner/core/budget.py``): clamps and direction-preserving guards.

``max_gpu_budget`` is a hard ceiling; ``min_gpu_budget`` a floor relaxed by one replica's width (the
tolerance) because integer steps of pools of different widths cannot always hit it. A negative value turns a
bound off. The guards never reverse a proposal's direction: a scale-up at the ceiling is held
(``gpu_budget_guard_hold``) rather than shrunk into a scale-down.
"""

from __future__ import annotations

import math

HOLD = "gpu_budget_guard_hold"
RECONCILE = "gpu_budget_reconcile"


def in_band(total: int, min_gpus: int, max_gpus: int, tolerance: int) -> bool:
    """``bounds_for_total``: is ``total`` within ``[min − tolerance, max]``?"""
    if max_gpus >= 0 and total > max_gpus:
        return False
    return not (min_gpus >= 0 and total < min_gpus - tolerance)


def _tolerance(widths: list[int], min_gpus: int, max_gpus: int) -> int:
    return max((g for g in widths if g > 0), default=0) if min_gpus >= 0 and max_gpus >= 0 else 0


def clamp_single(desired: int, gpu: int, min_gpus: int, max_gpus: int, min_endpoint: int) -> int:
    """``proportional_clamp_single``: fit one pool into the band (0 when even ``min_endpoint`` overshoots)."""
    if (min_gpus < 0 and max_gpus < 0) or gpu <= 0:
        return desired
    total = desired * gpu
    if in_band(total, min_gpus, max_gpus, _tolerance([gpu], min_gpus, max_gpus)):
        return desired
    if max_gpus >= 0 and total > max_gpus:
        if max_gpus < min_endpoint * gpu:
            return 0
        return max(min_endpoint, max_gpus // gpu)
    return max(min_endpoint, math.ceil(min_gpus / gpu))


def guard_single(current: int, proposed: int, gpu: int, min_gpus: int, max_gpus: int,
                 min_endpoint: int) -> tuple[int, str | None]:
    """``guard_single_scaling_budget``: apply the band to one pool's proposal without reversing it."""
    if gpu <= 0:
        return proposed, None
    tol = gpu if min_gpus >= 0 and max_gpus >= 0 else 0
    current_total = current * gpu
    if not in_band(current_total, min_gpus, max_gpus, tol):
        return clamp_single(current, gpu, min_gpus, max_gpus, min_endpoint), RECONCILE
    if min_gpus >= 0 and current_total <= min_gpus and proposed < current:
        return current, HOLD
    if max_gpus >= 0 and current_total >= max_gpus and proposed > current:
        return current, HOLD
    final = clamp_single(proposed, gpu, min_gpus, max_gpus, min_endpoint)
    if not min(current, proposed) <= final <= max(current, proposed):
        return current, HOLD
    return final, None


def clamp_pair(num_p: int, num_d: int, p_gpu: int, d_gpu: int, min_gpus: int, max_gpus: int,
               p_min: int, d_min: int) -> tuple[int, int]:
    """``proportional_clamp_pair``: fit a prefill/decode pair into the band, proportionally."""
    if (min_gpus < 0 and max_gpus < 0) or p_gpu <= 0 or d_gpu <= 0:
        return num_p, num_d
    total = num_p * p_gpu + num_d * d_gpu
    if in_band(total, min_gpus, max_gpus, _tolerance([p_gpu, d_gpu], min_gpus, max_gpus)):
        return num_p, num_d
    if max_gpus >= 0 and total > max_gpus:
        if max_gpus < p_min * p_gpu + d_min * d_gpu:
            return 0, 0
        scale = max_gpus / total
        max_p = math.floor((max_gpus - d_min * d_gpu) / p_gpu)
        new_p = max(p_min, min(max_p, math.floor(num_p * scale)))
        return new_p, max(d_min, math.floor((max_gpus - new_p * p_gpu) / d_gpu))
    floor = min_gpus
    share = floor / 2 / p_gpu if total <= 0 else num_p * floor / total  # no current total: split the floor
    new_p = max(p_min, math.ceil(share))
    new_d = max(d_min, math.ceil(max(0, floor - new_p * p_gpu) / d_gpu))
    decode_would_shrink = new_d < num_d
    new_d = max(num_d, new_d)
    if max_gpus >= 0 and new_p * p_gpu + new_d * d_gpu > max_gpus:
        if not decode_would_shrink:
            return num_p, num_d
        return fit_pair(num_p, num_d, new_p, num_d, p_gpu, d_gpu, min_gpus, max_gpus, p_min, d_min)
    return new_p, new_d


def fit_pair(cur_p: int, cur_d: int, prop_p: int, prop_d: int, p_gpu: int, d_gpu: int, min_gpus: int,
             max_gpus: int, p_min: int, d_min: int) -> tuple[int, int]:
    """``fit_directional_budget_pair``: the in-band pair nearest the proposal, each count between its current
    and proposed value; an opposing rebalance moves both legs or neither."""
    if p_gpu <= 0 or d_gpu <= 0:
        return prop_p, prop_d
    tol = _tolerance([p_gpu, d_gpu], min_gpus, max_gpus)
    opposing = (prop_p < cur_p and prop_d > cur_d) or (prop_p > cur_p and prop_d < cur_d)
    req_p, req_d = abs(prop_p - cur_p), abs(prop_d - cur_d)
    p_low, p_high = max(min(cur_p, prop_p), p_min), max(cur_p, prop_p)
    d_low, d_high = max(min(cur_d, prop_d), d_min), max(cur_d, prop_d)
    if max_gpus >= 0:
        p_high = min(p_high, (max_gpus - d_low * d_gpu) // p_gpu)
        d_high = min(d_high, (max_gpus - p_low * p_gpu) // d_gpu)
    if min_gpus >= 0:
        lower = min_gpus - tol
        p_low = max(p_low, -((d_high * d_gpu - lower) // p_gpu))
        d_low = max(d_low, -((p_high * p_gpu - lower) // d_gpu))
    if p_low > p_high or d_low > d_high:
        return cur_p, cur_d
    if prop_p >= p_min and prop_d >= d_min and in_band(prop_p * p_gpu + prop_d * d_gpu, min_gpus, max_gpus, tol):
        return prop_p, prop_d
    best: tuple[tuple[int, int, int, int, int], tuple[int, int]] | None = None

    def consider(cp: int, cd: int) -> None:
        nonlocal best
        if not in_band(cp * p_gpu + cd * d_gpu, min_gpus, max_gpus, tol):
            return
        prog_p, prog_d = abs(cp - cur_p), abs(cd - cur_d)
        score = (abs(prop_p - cp) + abs(prop_d - cd), abs(prog_p * req_d - prog_d * req_p), -(prog_p + prog_d), cp, cd)
        if best is None or score < best[0]:
            best = (score, (cp, cd))

    eff_min = min_gpus - tol if min_gpus >= 0 else None
    # iterate over the narrower axis, solving the other (Dynamo's loop, written once for both orientations)
    swap = not (p_high - p_low <= d_high - d_low)
    a_low, a_high, a_gpu, a_cur = (d_low, d_high, d_gpu, cur_d) if swap else (p_low, p_high, p_gpu, cur_p)
    b_low0, b_high0, b_gpu, b_cur, b_prop = (p_low, p_high, p_gpu, cur_p, prop_p) if swap else (
        d_low, d_high, d_gpu, cur_d, prop_d)
    for a in range(a_low, a_high + 1):
        b_low, b_high = b_low0, b_high0
        cost = a * a_gpu
        if eff_min is not None:
            b_low = max(b_low, -((cost - eff_min) // b_gpu))
        if max_gpus >= 0:
            b_high = min(b_high, (max_gpus - cost) // b_gpu)
        if opposing:
            if a == a_cur:
                if b_low <= b_cur <= b_high:
                    consider(*((b_cur, a) if swap else (a, b_cur)))
                continue
            if b_prop > b_cur:
                b_low = max(b_low, b_cur + 1)
            else:
                b_high = min(b_high, b_cur - 1)
        if b_low <= b_high:
            b = min(max(b_prop, b_low), b_high)
            consider(*((b, a) if swap else (a, b)))
    return (cur_p, cur_d) if best is None else best[1]


def guard_pair(cur_p: int, cur_d: int, prop_p: int, prop_d: int, p_gpu: int, d_gpu: int, min_gpus: int,
               max_gpus: int, p_min: int, d_min: int) -> tuple[int, int, str | None]:
    """``guard_disagg_scaling_budget``: apply the band to a disagg proposal without reversing it."""
    if p_gpu <= 0 or d_gpu <= 0:
        return (*clamp_pair(prop_p, prop_d, p_gpu, d_gpu, min_gpus, max_gpus, p_min, d_min), None)
    tol = max(p_gpu, d_gpu) if max_gpus >= 0 else 0
    cur_total = cur_p * p_gpu + cur_d * d_gpu
    if not in_band(cur_total, min_gpus, max_gpus, tol):
        return (*clamp_pair(cur_p, cur_d, p_gpu, d_gpu, min_gpus, max_gpus, p_min, d_min), RECONCILE)
    p_down, p_up, d_down, d_up = prop_p < cur_p, prop_p > cur_p, prop_d < cur_d, prop_d > cur_d
    any_down, any_up = p_down or d_down, p_up or d_up
    opposing = (p_down and d_up) or (p_up and d_down)
    if cur_total <= min_gpus and any_down and not any_up:
        return cur_p, cur_d, HOLD
    if (cur_total <= min_gpus and opposing) or (max_gpus >= 0 and cur_total >= max_gpus and any_up):
        if not opposing:
            return cur_p, cur_d, HOLD
        fp, fd = fit_pair(cur_p, cur_d, prop_p, prop_d, p_gpu, d_gpu, min_gpus, max_gpus, p_min, d_min)
        return (cur_p, cur_d, HOLD) if (fp, fd) == (cur_p, cur_d) else (fp, fd, None)
    new_p, new_d = clamp_pair(prop_p, prop_d, p_gpu, d_gpu, min_gpus, max_gpus, p_min, d_min)
    if not (min(cur_p, prop_p) <= new_p <= max(cur_p, prop_p) and min(cur_d, prop_d) <= new_d <= max(cur_d, prop_d)):
        return cur_p, cur_d, HOLD
    if not in_band(new_p * p_gpu + new_d * d_gpu, min_gpus, max_gpus, tol):
        return cur_p, cur_d, HOLD
    return new_p, new_d, None
