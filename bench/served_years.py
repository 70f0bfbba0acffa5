"""Unseen days at every year-end: the served case (bench/served.py) cut at the last session of
every calendar year with at least three years of history before it and a full year after,
on each bundled series, and on more synthetic regime series. A wider, out-of-sample check of
the tracking's defaults, which were chosen on the served case's ten one-step years: the other
years here were not looked at when they were set.

Beside them, regime shapes none of the settings were chosen on (``SHAPES``: a doubling over a
year, a 30-session crash, a halving, no change, a tripling), each after six calm years, three
seeds: served through the year after the change starts.

Each year is classed by what it did to volatility: *turbulent* when the realised volatility
of its daily log returns was at least ``TURBULENT`` times that of the year before the cut,
*calm* otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import ttest_1samp
from served import (
    SESSIONS,
    TARGETS,
    _validated,
    bench_served,
    calibrated_chance,
    calibrated_chance_at_step,
    garch_prices,
    score_change,
    setting_labels,
    within,
)

TURBULENT = 1.25
MIN_YEARS = 3
CALM_YEARS = 6  # before each shape's change
_T = np.arange((CALM_YEARS + 1) * SESSIONS + 60)
_CHANGE = CALM_YEARS * SESSIONS
# The volatility's multiplier per session of each shape (the change at row _CHANGE).
SHAPES = {
    "volatility doubling over a year": np.clip(1 + (_T - _CHANGE) / SESSIONS, 1, 2),
    "a 30-session crash at 5x": np.where((_T >= _CHANGE + 40) & (_T < _CHANGE + 70), 5.0, 1.0),
    "volatility halved": np.where(_T < _CHANGE, 2.0, 1.0),
    "no change": np.ones(len(_T)),
    "volatility tripled": np.where(_T >= _CHANGE, 3.0, 1.0),
}


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


def shape_cuts(seeds: range, cfg) -> list[tuple[pd.DataFrame, int, str]]:
    """Each shape of ``SHAPES`` under each seed (validated), cut where its change starts."""
    return [(_validated(f"SHAPE{seed}", garch_prices(np.random.default_rng(
        [seed, i]), level), cfg), _CHANGE, f"shape {seed}: {name}")
        for seed in seeds for i, (name, level) in enumerate(SHAPES.items())]


def bench_served_years(horizons: tuple[int, ...] = (1, 5), synthetic: range = range(6),
                       shape_seeds: range = range(3)) -> dict:
    """Every year-end cut of each bundled series at each horizon; at horizon 1 also the
    synthetic series' tripled and calm-again years for each seed, and each shape's year."""
    return bench_served(horizons, synthetic, year_end_cuts, lambda frame, cut: {
        "volatility_ratio": volatility_ratio(frame, cut)},
        lambda cfg: shape_cuts(shape_seeds, cfg))


def markdown(result: dict) -> list[str]:
    """One row per setting: years within target, interval score against static on calm and
    turbulent years, and at horizon 5 the steps within two points."""
    one = [c for c in result["cases"] if c["horizon"] == 1 and not c.get("more")]
    multi = [c for c in result["cases"] if c["horizon"] > 1]
    calm = [c for c in one if c["volatility_ratio"] < TURBULENT]
    rough = [c for c in one if c["volatility_ratio"] >= TURBULENT]
    lines = [f"**Unseen days at every year-end** (horizon 1: {len(one)} served years, "
             f"{len(calm)} calm and {len(rough)} turbulent (volatility at least {TURBULENT}x "
             f"the year before's); horizon 5: {len(multi)} years, every step; within target: "
             "95 % in 0.94-0.96, 80 % in 0.78-0.82 (mean distance from nominal, points); "
             "interval score 95 against the static bands, mean and worst):", "",
             "| setting | 95 % within | 80 % within | score vs static: calm mean, worst, "
             "within 1 % | turbulent mean, worst | horizon 5 steps within 2 points: 95 %, 80 % |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, label in setting_labels("hindsight: best constant rescaling"):
        calm_change, rough_change = score_change(calm, name), score_change(rough, name)
        steps = [s for c in multi for s in c[name]]
        near95 = sum(abs(s["coverage_95"] - 0.95) <= 0.02 + 1e-9 for s in steps)
        near80 = sum(abs(s["coverage_80"] - 0.8) <= 0.02 + 1e-9 for s in steps)
        lines.append(
            f"| {label} | {within(one, name, 'coverage_95')} | {within(one, name, 'coverage_80')} | "
            f"{100 * calm_change.mean():+.1f} %, {100 * calm_change.max():+.1f} %, "
            f"{np.sum(calm_change <= 0.01 + 1e-12)}/{len(calm)} | "
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
    lines += _shapes([c for c in result["cases"] if c.get("more")])
    lines += _choice_on_adapted([c for c in result["cases"] if "on_adapted" in c])
    lines += ["", "Per year (horizon 1; coverage 80 and 95 adaptive / static, interval score "
              "95 adaptive against static, volatility ratio):", "",
              "| year | served | coverage 80 | coverage 95 | score | volatility ratio |",
              "|---|---|---:|---:|---:|---:|"]
    for c in [*one, *(c for c in result["cases"] if c.get("more"))]:
        a, s = c["adaptive"][0], c["static"][0]
        lines.append(f"| {c['label']} | {c['served']} | {a['coverage_80']:.3f} / "
                     f"{s['coverage_80']:.3f} | {a['coverage_95']:.3f} / {s['coverage_95']:.3f} "
                     f"| {100 * (a['interval_score_95'] / s['interval_score_95'] - 1):+.1f} % | "
                     f"{c['volatility_ratio']:.2f} |")
    return [*lines, ""]


def _shapes(cases: list[dict]) -> list[str]:
    """Each setting on the regime shapes no setting was chosen on: years within target, the
    lowest coverage of a year, and the interval score against the static bands."""
    if not cases:
        return []
    lines = ["", f"**Regime shapes no setting was chosen on** ({len(cases)} served years, "
             "horizon 1: each shape after six calm years, three seeds):", "",
             "| setting | 95 % within | 80 % within | lowest coverage 95, 80 | "
             "score vs static: mean, worst |", "|---|---:|---:|---:|---:|"]
    for name, label in setting_labels("hindsight: best constant rescaling"):
        low95 = min(c[name][0]["coverage_95"] for c in cases)
        low80 = min(c[name][0]["coverage_80"] for c in cases)
        change = score_change(cases, name)
        lines.append(f"| {label} | {within(cases, name, 'coverage_95')} | "
                     f"{within(cases, name, 'coverage_80')} | {low95:.3f}, {low80:.3f} | "
                     f"{100 * change.mean():+.1f} %, {100 * change.max():+.1f} % |")
    return lines


def _choice_on_adapted(cases: list[dict]) -> list[str]:
    """How often choosing the served forecaster on the adapted test-span bands would have
    served another one, and how that one scored through the year against the one served."""
    changed = [c for c in cases if c["on_adapted"]["tag"] != c["served"]]
    if not cases:
        return []
    change = np.array([c["on_adapted"]["interval_score_95"] / c["adaptive"][0]["interval_score_95"]
                       - 1 for c in changed])
    line = (f"**The choice of forecaster on the adapted bands** (the same rule on every "
            f"forecaster's adapted test-span bands, horizon 1): another forecaster in "
            f"{len(changed)} of {len(cases)} years")
    if len(changed):
        p = ttest_1samp(change, 0.0).pvalue if len(changed) > 1 else float("nan")
        line += (f"; through the year it scored {100 * change.mean():+.1f} % against the one "
                 f"served (better in {int(np.sum(change < 0))}, worse in "
                 f"{int(np.sum(change > 0))}, paired t p {p:.2f}): "
                 + ", ".join(f"{c['label']} {c['served']} -> {c['on_adapted']['tag']} "
                             f"{100 * x:+.1f} %" for c, x in zip(changed, change, strict=True)))
    return ["", line + "."]
