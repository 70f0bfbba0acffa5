"""Unseen days at every year-end: the served case (bench/served.py) cut at the last session of
every calendar year with at least three years of history before it and a full year after,
on each bundled series, and on more synthetic regime series. A wider, out-of-sample check of
the tracking's defaults, which were chosen on the served case's ten one-step years: the other
years here were not looked at when they were set.

Each year is classed by what it did to volatility: *turbulent* when the realised volatility
of its daily log returns was at least ``TURBULENT`` times that of the year before the cut,
*calm* otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from served import (
    SESSIONS,
    TARGETS,
    bench_served,
    calibrated_chance,
    calibrated_chance_at_step,
    score_change,
    setting_labels,
    within,
)

TURBULENT = 1.25
MIN_YEARS = 3


def year_end_cuts(frame: pd.DataFrame, horizon: int) -> list[int]:
    """The rows just after each calendar year's last session, where at least ``MIN_YEARS``
    years of sessions come before and a year of sessions (plus the horizon) after."""
    years = frame["Date"].dt.year.to_numpy()
    last = np.flatnonzero(years[:-1] != years[1:])  # each year's last row
    cuts = last + 1
    keep = (cuts >= MIN_YEARS * SESSIONS) & (cuts - 1 + SESSIONS + horizon <= len(frame))
    return [int(c) for c in cuts[keep]]


def volatility_ratio(frame: pd.DataFrame, cut: int) -> float:
    """Realised volatility of the served year over that of the year before the cut."""
    r = np.diff(np.log(frame["Close"].to_numpy(np.float64)))
    t = cut - 1
    return float(r[t:t + SESSIONS].std() / r[max(t - SESSIONS, 0):t].std())


def bench_served_years(horizons: tuple[int, ...] = (1, 5), synthetic: range = range(6)
                       ) -> dict:
    """Every year-end cut of each bundled series at each horizon; at horizon 1 also the
    synthetic series' tripled and calm-again years for each seed."""
    return bench_served(horizons, synthetic, year_end_cuts, lambda frame, cut: {
        "volatility_ratio": volatility_ratio(frame, cut)})


def markdown(result: dict) -> list[str]:
    """One row per setting: years within target, interval score against static on calm and
    turbulent years, and at horizon 5 the steps within two points."""
    one = [c for c in result["cases"] if c["horizon"] == 1]
    multi = [c for c in result["cases"] if c["horizon"] > 1]
    calm = [c for c in one if c["volatility_ratio"] < TURBULENT]
    rough = [c for c in one if c["volatility_ratio"] >= TURBULENT]
    lines = [f"**Unseen days at every year-end** (horizon 1: {len(one)} served years, "
             f"{len(calm)} calm and {len(rough)} turbulent (volatility at least {TURBULENT}x "
             f"the year before's); horizon 5: {len(multi)} years, every step; within target: "
             "95 % in 0.94-0.96, 80 % in 0.78-0.82 (mean distance from nominal, points); "
             "interval score 95 against the static bands, mean and worst):", "",
             "| setting | 95 % within | 80 % within | score vs static: calm mean, worst | "
             "turbulent mean, worst | horizon 5 steps within 2 points: 95 %, 80 % |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, label in setting_labels("hindsight: best constant rescaling"):
        calm_change, rough_change = score_change(calm, name), score_change(rough, name)
        steps = [s for c in multi for s in c[name]]
        near95 = sum(abs(s["coverage_95"] - 0.95) <= 0.02 + 1e-9 for s in steps)
        near80 = sum(abs(s["coverage_80"] - 0.8) <= 0.02 + 1e-9 for s in steps)
        lines.append(
            f"| {label} | {within(one, name, 'coverage_95')} | {within(one, name, 'coverage_80')} | "
            f"{100 * calm_change.mean():+.1f} %, {100 * calm_change.max():+.1f} % | "
            f"{100 * rough_change.mean():+.1f} %, {100 * rough_change.max():+.1f} % | "
            f"{near95}/{len(steps)}, {near80}/{len(steps)} |")
    chance = {k: calibrated_chance(SESSIONS, *t) for k, t in TARGETS.items()}
    numbers = [k for c in multi for k in range(1, c["horizon"] + 1)]  # each step's k
    near = {nominal: sum(calibrated_chance_at_step(SESSIONS, nominal, 0.02, k) for k in numbers)
            for nominal in (0.95, 0.8)}
    lines.append(f"| a perfectly calibrated band (expected: binomial over {SESSIONS} sessions; "
                 "at horizon 5 simulated, the steps' outcomes overlapping) | "
                 f"{chance['coverage_95'] * len(one):.1f}/{len(one)} | "
                 f"{chance['coverage_80'] * len(one):.1f}/{len(one)} | | | "
                 f"{near[0.95]:.1f}/{len(numbers)}, {near[0.8]:.1f}/{len(numbers)} |")
    lines += ["", "Per year (horizon 1; coverage 80 and 95 adaptive / static, interval score "
              "95 adaptive against static, volatility ratio):", "",
              "| year | served | coverage 80 | coverage 95 | score | volatility ratio |",
              "|---|---|---:|---:|---:|---:|"]
    for c in one:
        a, s = c["adaptive"][0], c["static"][0]
        lines.append(f"| {c['label']} | {c['served']} | {a['coverage_80']:.3f} / "
                     f"{s['coverage_80']:.3f} | {a['coverage_95']:.3f} / {s['coverage_95']:.3f} "
                     f"| {100 * (a['interval_score_95'] / s['interval_score_95'] - 1):+.1f} % | "
                     f"{c['volatility_ratio']:.2f} |")
    return [*lines, ""]
