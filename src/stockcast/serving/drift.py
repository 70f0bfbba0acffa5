"""Drift as a sequential test: Page's CUSUM on how large each day's realised range is against
the width of the champion's 95 % interval for that day.

A daily significance test at 5 % raises a false alarm every twenty calm days or so; a CUSUM
accumulates evidence instead, from the first scored forecast, and its threshold fixes how
often a calm model is flagged over a whole year. Each scored one-step forecast gives

    u_t = 0.5 ln(v_t / s_t^2),  w_t = (u_t - m) / d,
    S_0 = 0,  S_t = max(0, S_{t-1} + min(w_t, cap) - reference),  drift while S_t > threshold

where v_t is the target day's range-based variance (overnight gap plus Garman-Klass, the
day's high and low: several times the information of its close alone), s_t the sd the
interval implies (its 95 % log-width / (2 x 1.96)), and m, d the mean and sd of u on the
champion's own out-of-sample test span (its logged forecast table): the model's calm, in
its own units. The defaults (reference 1.0, cap 3, threshold 4.25) come from
``stockcast.serving.drift_simulation``; docs/operating.md has the measured rates.

Without that reference (a champion of an older stockcast without a test table, or prices
without Open/High/Low) the CUSUM runs on the size of each move instead, |z| = the
log-move over the interval's sd (1.96 on the interval's edge): weaker (a single close per
day), with its own measured constants below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.modeling.volatility import LOG_VAR_FLOOR, range_variance

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
MIN_REFERENCE = 30  # one-step test-span forecasts needed to standardise the range
# The |z| fallback's reference, cap and threshold (measured, see drift_simulation).
MOVES_CUSUM = (1.4, 4.0, 5.0)
REALISED = "realised_variance"


def _band(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = ("lower_95", "upper_95") if "lower_95" in rows else ("q0.025", "q0.975")
    return rows[lo].to_numpy(float), rows[hi].to_numpy(float)


def implied_sd(rows: pd.DataFrame) -> np.ndarray:
    """The daily log-return sd each row's 95 % interval implies: log(upper / lower) / 3.92."""
    lo, hi = _band(rows)
    return np.maximum(np.log(hi / lo) / (2 * Z95), 1e-12)


def standardised_moves(scored: pd.DataFrame) -> np.ndarray:
    """|z| of each scored forecast: log(actual / forecast) over the sd its 95 % interval
    implies, so a move to the interval's edge is 1.96."""
    actual, point = scored["actual"].to_numpy(float), scored["forecast"].to_numpy(float)
    return np.abs(np.log(actual / point)) / implied_sd(scored)


def with_realised_variance(rows: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each target date's range-based variance from ``frame`` (NaN where the
    frame has no such date; unchanged when it has no Open/High/Low)."""
    if not {"Open", "High", "Low", "Close"} <= set(frame.columns):
        return rows
    realised = pd.DataFrame({"date": pd.to_datetime(frame["Date"]).to_numpy(),
                             REALISED: range_variance(frame)})
    return rows.drop(columns=[REALISED], errors="ignore").merge(realised, on="date", how="left")


def model_sd(rows: pd.DataFrame) -> np.ndarray:
    """The daily sd the forecaster's own interval implies: the served 95 % band's
    (``implied_sd``) over the adaptation's width ratio where a row records one
    (``band_ratio_95``, served width / static width), so the range CUSUM watches the model's
    scale, as its reference (the champion's static test-span bands) does, and not the
    adaptation's narrowing in calm spells or widening after misses."""
    sd = implied_sd(rows)
    if "band_ratio_95" not in rows:
        return sd
    ratio = rows["band_ratio_95"].to_numpy(float)
    return sd / np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)


def log_range_ratios(rows: pd.DataFrame) -> np.ndarray:
    """u = 0.5 ln(v / s^2) per row: the realised range-based sd over the model's sd."""
    v = np.maximum(rows[REALISED].to_numpy(float), LOG_VAR_FLOOR)
    return 0.5 * np.log(v) - np.log(model_sd(rows))


@dataclass(frozen=True)
class RangeReference:
    """The calm distribution of u: its mean and sd over a champion's test span."""

    mean: float
    sd: float
    n: int
    source: str

    def standardise(self, rows: pd.DataFrame) -> np.ndarray:
        """w = (u - mean) / sd for rows that carry a realised variance."""
        return (log_range_ratios(rows) - self.mean) / self.sd


def range_reference(table: pd.DataFrame | None, frame: pd.DataFrame,
                    source: str) -> RangeReference | None:
    """The reference from a version's out-of-sample forecast table (its one-step rows whose
    date ``frame`` still holds), or None when fewer than ``MIN_REFERENCE`` rows can be read."""
    if table is None or not len(table):
        return None
    one = with_realised_variance(table[table["step"] == 1], frame)
    if REALISED not in one:
        return None
    u = log_range_ratios(one.dropna(subset=[REALISED]))
    u = u[np.isfinite(u)]
    if len(u) < MIN_REFERENCE or float(np.std(u)) <= 0:
        return None
    return RangeReference(float(np.mean(u)), float(np.std(u, ddof=1)), len(u), source)


@dataclass(frozen=True)
class Cusum:
    """The CUSUM path's last value, its maximum, when it first crossed, and the threshold."""

    statistic: float
    peak: float
    threshold: float
    first_alarm: int | None  # index of the first forecast at which S exceeded the threshold

    @property
    def alarm(self) -> bool:
        """True while the statistic is above the threshold."""
        return self.statistic > self.threshold


def cusum(moves: np.ndarray, reference: float, cap: float, threshold: float) -> Cusum:
    """Page's one-sided CUSUM of ``min(moves, cap) - reference``."""
    s, peak, first = 0.0, 0.0, None
    for i, v in enumerate(np.minimum(np.asarray(moves, float), cap)):
        s = max(0.0, s + v - reference)
        peak = max(peak, s)
        if first is None and s > threshold:
            first = i
    return Cusum(s, peak, threshold, first)


# Each band's promised share of misses (outside the central interval, either side).
BAND_MISS_RATE = {80: 0.2, 95: 0.05}


def band_misses(rows: pd.DataFrame, coverage: int) -> np.ndarray:
    """1 where the realised close fell outside the row's central ``coverage`` % band."""
    actual = rows["actual"].to_numpy(float)
    lo, hi = rows[f"lower_{coverage}"].to_numpy(float), rows[f"upper_{coverage}"].to_numpy(float)
    return ((actual < lo) | (actual > hi)).astype(float)


def band_cusum(missed: np.ndarray, miss_rate: float, threshold: float) -> Cusum:
    """The Bernoulli CUSUM of a band's misses: the log-likelihood ratio of misses twice as
    frequent as promised (p1 = 2 p0) against the promise p0, accumulated from the first scored
    forecast. Each miss adds ln 2; each covered day subtracts ln((1 - p0) / (1 - 2 p0)): it
    stays above its threshold while the band keeps missing too often, and clears only as
    covered days accumulate."""
    p0, p1 = miss_rate, 2 * miss_rate
    steps = np.where(np.asarray(missed, float) > 0, np.log(p1 / p0), np.log((1 - p1) / (1 - p0)))
    return cusum(steps, 0.0, np.inf, threshold)
