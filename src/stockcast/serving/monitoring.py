"""Watching the champion after it ships: every forecast is kept in the ledger (``ledger``),
and once its date has arrived it is scored against the realised close, beside persistence. Drift is a
sequential test (a CUSUM, see ``drift``) and the lower tail is backtested the way risk
managers do (Kupiec, Christoffersen, the Basel traffic light)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import MonitorConfig
from stockcast.evaluation.interval_scores import interval_score
from stockcast.evaluation.significance import dm_test
from stockcast.evaluation.tail_backtests import tail_backtest
from stockcast.serving.drift import (
    MOVES_CUSUM,
    REALISED,
    Cusum,
    RangeReference,
    cusum,
    standardised_moves,
)

ZONES = {"green": 0.0, "yellow": 1.0, "red": 2.0}


@dataclass(frozen=True)
class LiveReport:
    """Live performance of the current champion, the drift evidence and the verdict."""

    metrics: dict[str, float]
    drift: str | None  # why drift was flagged, or None
    zone: str = "green"  # Basel traffic light of the 2.5 % quantile's exceedances
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


def live_report(scored: pd.DataFrame, cfg: MonitorConfig,
                reference: RangeReference | None = None) -> LiveReport:
    """Live metrics over the last ``cfg.window`` scored forecasts of the current champion;
    drift from a CUSUM over all its scored one-step forecasts (from the first; ``drift_path``),
    and the 2.5 % quantile's backtests (Kupiec, Christoffersen, Basel zone) over the last
    ``cfg.tail_days``."""
    if len(scored) and "model_version" in scored:  # the champion forecasting now
        scored = scored[scored["model_version"].astype(str)
                        == str(scored["model_version"].iloc[-1])]
    if len(scored) == 0:
        return LiveReport({"live_scored": 0.0}, None)
    metrics = _window_metrics(scored.tail(cfg.window))
    daily = scored[scored["step"] == 1]
    path, label, detail = drift_path(daily, cfg, reference)
    tail = daily.tail(cfg.tail_days)
    tests = tail_backtest(tail["actual"].to_numpy(float), tail["lower_95"].to_numpy(float), 0.025)
    metrics |= {"live_cusum": path.statistic, "live_cusum_threshold": path.threshold,
                "live_tail_forecasts": float(tests.n),
                "live_tail_exceedances": float(tests.exceedances),
                "live_kupiec_pvalue": tests.kupiec_pvalue,
                "live_christoffersen_pvalue": tests.christoffersen_pvalue,
                "live_basel_zone": ZONES[tests.zone]}
    drift = None
    if path.alarm:
        drift = (f"the {label} is {path.statistic:.2f} > "
                 f"threshold {path.threshold:g} over {len(daily)} scored one-step forecasts "
                 "(intervals too narrow for the days since)")
    elif tests.zone == "red":
        drift = (f"the 2.5 % quantile was exceeded {tests.exceedances} times in {tests.n} "
                 f"forecasts: Basel red zone (Kupiec p {tests.kupiec_pvalue:.3g})")
    return LiveReport(metrics, drift, tests.zone, statistic=f"{label} ({detail})")
