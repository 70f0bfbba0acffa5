"""Watching the champion after it ships: every forecast is kept in the ledger (``ledger``),
and once its date has arrived it is scored against the realised close, beside persistence.
Drift is sequential tests from the first scored forecast: the range CUSUM (``drift``: is the
day's range too large for the band?) and one coverage CUSUM per band (do the 80 % and the
95 % band miss more often than promised?). The lower tail is backtested the way risk
managers do (Kupiec, Christoffersen, at the 2.5 % and the 10 % quantile), and the Basel
traffic light of the 2.5 % quantile is read only from ``zone_min_forecasts`` forecasts: on
fewer, one exceedance would be "red" (a Basel zone is defined on 250 days)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import MonitorConfig
from stockcast.evaluation.interval_scores import interval_score
from stockcast.evaluation.significance import dm_test
from stockcast.evaluation.tail_backtests import tail_backtest
from stockcast.serving.drift import (
    BAND_MISS_RATE,
    MOVES_CUSUM,
    REALISED,
    Cusum,
    RangeReference,
    band_cusum,
    band_misses,
    cusum,
    standardised_moves,
)

ZONES = {"green": 0.0, "yellow": 1.0, "red": 2.0}
NO_ZONE = "too few"  # the zone before ``zone_min_forecasts`` scored forecasts


@dataclass(frozen=True)
class LiveReport:
    """Live performance of the current champion, the drift evidence and the verdict."""

    metrics: dict[str, float]
    drift: str | None  # why drift was flagged, or None
    zone: str = NO_ZONE  # Basel traffic light of the 2.5 % quantile's exceedances
    notes: tuple[str, ...] = ()  # what the ledger had to set aside (corrupt, foreign rows)
    statistic: str = ""  # which CUSUM judged drift, and its reference


def _window_metrics(recent: pd.DataFrame) -> dict[str, float]:
    actual, point, last = (recent[c].to_numpy(float) for c in ("actual", "forecast", "last_close"))
    lo95, hi95 = recent["lower_95"].to_numpy(float), recent["upper_95"].to_numpy(float)
    # H1: persistence has the lower squared error (reported, not a drift rule: repeated daily,
    # an uncorrected test raises false alarms).
    worse = dm_test((last - actual) ** 2, (point - actual) ** 2, int(recent["step"].max()))
    return {
        "live_scored": float(len(recent)),
        "live_rmse": float(np.sqrt(np.mean((point - actual) ** 2))),
        "live_naive_rmse": float(np.sqrt(np.mean((last - actual) ** 2))),
        "live_coverage_95": float(((actual >= lo95) & (actual <= hi95)).mean()),
        "live_coverage_80": float(((actual >= recent["lower_80"]) &
                                   (actual <= recent["upper_80"])).mean()),
        "live_interval_score_95": float(interval_score(lo95, hi95, actual, 0.95).mean()),
        "live_dm_pvalue_worse": worse.pvalue,
    }


def drift_path(daily: pd.DataFrame, cfg: MonitorConfig,
               reference: RangeReference | None) -> tuple[Cusum, str, str]:
    """The CUSUM over the scored one-step forecasts and what it ran on: the day's range
    standardised by ``reference`` when there is one and every row has its range, else the
    size of each move (``MOVES_CUSUM``)."""
    if reference is not None and REALISED in daily and daily[REALISED].notna().all():
        path = cusum(reference.standardise(daily), cfg.cusum_reference, cfg.cusum_cap,
                     cfg.cusum_threshold)
        return path, "range CUSUM", (f"reference: {reference.source}, {reference.n} one-step "
                                     f"forecasts, mean {reference.mean:.3f}, sd {reference.sd:.3f}")
    why = ("no reference" if reference is None else "prices without a range on some days")
    return cusum(standardised_moves(daily), *MOVES_CUSUM), "|z| CUSUM", why


def band_paths(daily: pd.DataFrame, cfg: MonitorConfig) -> dict[int, Cusum]:
    """The coverage CUSUM of each band's misses over the scored one-step forecasts."""
    thresholds = {80: cfg.band_cusum_threshold_80, 95: cfg.band_cusum_threshold_95}
    return {c: band_cusum(band_misses(daily, c), BAND_MISS_RATE[c], thresholds[c])
            for c in BAND_MISS_RATE}


def tail_tests(tail: pd.DataFrame, cfg: MonitorConfig) -> tuple[dict[str, float], str, str | None]:
    """Kupiec and Christoffersen of the 2.5 % and 10 % quantiles, and the Basel zone of the
    2.5 % one (``NO_ZONE`` on fewer than ``zone_min_forecasts``): metrics, zone, and why the
    zone is red (None when it is not)."""
    actual = tail["actual"].to_numpy(float)
    low = tail_backtest(actual, tail["lower_95"].to_numpy(float), 0.025)
    low80 = tail_backtest(actual, tail["lower_80"].to_numpy(float), 0.1)
    metrics = {"live_tail_forecasts": float(low.n), "live_tail_exceedances": float(low.exceedances),
               "live_kupiec_pvalue": low.kupiec_pvalue,
               "live_christoffersen_pvalue": low.christoffersen_pvalue,
               "live_tail80_exceedances": float(low80.exceedances),
               "live_kupiec80_pvalue": low80.kupiec_pvalue,
               "live_christoffersen80_pvalue": low80.christoffersen_pvalue}
    if low.n < cfg.zone_min_forecasts:
        return metrics, NO_ZONE, None
    metrics["live_basel_zone"] = ZONES[low.zone]
    red = (f"the 2.5 % quantile was exceeded {low.exceedances} times in {low.n} forecasts: "
           f"Basel red zone (Kupiec p {low.kupiec_pvalue:.3g})") if low.zone == "red" else None
    return metrics, low.zone, red


def live_report(scored: pd.DataFrame, cfg: MonitorConfig,
                reference: RangeReference | None = None) -> LiveReport:
    """Live metrics over the last ``cfg.window`` scored forecasts of the current champion;
    drift from the range CUSUM and the two bands' coverage CUSUMs over all its scored one-step
    forecasts (from the first), or from a red Basel zone; the tail backtests over the last
    ``cfg.tail_days`` (``tail_tests``)."""
    if len(scored) and "model_version" in scored:  # the champion forecasting now
        scored = scored[scored["model_version"].astype(str)
                        == str(scored["model_version"].iloc[-1])]
    if len(scored) == 0:
        return LiveReport({"live_scored": 0.0}, None)
    metrics = _window_metrics(scored.tail(cfg.window))
    daily = scored[scored["step"] == 1]
    path, label, detail = drift_path(daily, cfg, reference)
    bands = band_paths(daily, cfg)
    tails, zone, red = tail_tests(daily.tail(cfg.tail_days), cfg)
    metrics |= {"live_cusum": path.statistic, "live_cusum_threshold": path.threshold, **tails}
    for c, band in bands.items():
        metrics |= {f"live_band{c}_cusum": band.statistic,
                    f"live_band{c}_cusum_threshold": band.threshold}
    reasons = []
    if path.alarm:
        reasons.append(f"the {label} is {path.statistic:.2f} > threshold {path.threshold:g} over "
                       f"{len(daily)} scored one-step forecasts (intervals too narrow for the "
                       "days since)")
    for c, band in bands.items():
        if band.alarm:
            misses = int(band_misses(daily, c).sum())
            reasons.append(f"the {c} % band missed {misses} of {len(daily)} one-step forecasts "
                           f"(promised {BAND_MISS_RATE[c]:.0%}): coverage CUSUM "
                           f"{band.statistic:.2f} > {band.threshold:g}")
    if red:
        reasons.append(red)
    zone_label = zone if zone != NO_ZONE else (
        f"{NO_ZONE}: {len(daily.tail(cfg.tail_days))} forecasts, a zone needs "
        f"{cfg.zone_min_forecasts}")
    return LiveReport(metrics, "; ".join(reasons) or None, zone_label,
                      statistic=f"{label} ({detail})")
