"""Watching the champion after it ships: every forecast is kept in a ledger, and once its
date has arrived it is scored against the realised close, beside persistence. Live metrics
over the most recent forecasts flag drift (coverage collapsing, or a point forecast
significantly worse than persistence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.config import MonitorConfig
from stockcast.evaluation.interval_scores import interval_score
from stockcast.evaluation.significance import dm_test
from stockcast.runtime import path_inside

LEDGER = "ledger.parquet"
KEY = ["last_date", "step"]


def ledger_path(out_dir: Path, ticker: str) -> Path:
    """The ticker's forecast ledger (one row per forecast origin and step)."""
    return path_inside(Path(out_dir), ticker, LEDGER)


def record_forecast(out_dir: Path, ticker: str, forecast: pd.DataFrame) -> Path:
    """Add a forecast to the ledger (a re-run for the same origin replaces its rows)."""
    path = ledger_path(out_dir, ticker)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = forecast.drop(columns=[c for c in ("ticker", "model") if c in forecast])
    if path.exists():
        old = pd.read_parquet(path)
        old = old.merge(rows[KEY], on=KEY, how="left", indicator=True)
        old = old[old["_merge"] == "left_only"].drop(columns="_merge")
        rows = pd.concat([old, rows], ignore_index=True)
    tmp = path.with_suffix(".tmp")
    rows.sort_values(KEY).to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def score_ledger(ledger: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The ledger's forecasts whose dates have arrived, with the realised close."""
    closes = frame[["Date", "Close"]].rename(columns={"Date": "date", "Close": "actual"})
    scored = ledger.merge(closes, on="date", how="inner")
    return scored.sort_values(["date", "step"]).reset_index(drop=True)


@dataclass(frozen=True)
class LiveReport:
    """Live performance over the most recent scored forecasts, and the drift verdict."""

    metrics: dict[str, float]
    drift: str | None  # why drift was flagged, or None


def live_report(scored: pd.DataFrame, cfg: MonitorConfig) -> LiveReport:
    """Live RMSE against persistence, coverage and interval score over the last ``cfg.window``
    scored forecasts; drift when coverage or the point forecast leaves the configured bounds."""
    recent = scored.tail(cfg.window)
    n = len(recent)
    if n == 0:
        return LiveReport({"live_scored": 0.0}, None)
    actual, point, last = (recent[c].to_numpy(float) for c in ("actual", "forecast", "last_close"))
    inside = (actual >= recent["lower_95"]) & (actual <= recent["upper_95"])
    metrics = {
        "live_scored": float(n),
        "live_rmse": float(np.sqrt(np.mean((point - actual) ** 2))),
        "live_naive_rmse": float(np.sqrt(np.mean((last - actual) ** 2))),
        "live_coverage_95": float(inside.mean()),
        "live_coverage_80": float(((actual >= recent["lower_80"]) &
                                   (actual <= recent["upper_80"])).mean()),
        "live_interval_score_95": float(interval_score(
            recent["lower_95"].to_numpy(float), recent["upper_95"].to_numpy(float), actual,
            0.95).mean()),
    }
    # H1: persistence has the lower squared error (the live point forecast is worse).
    worse = dm_test((last - actual) ** 2, (point - actual) ** 2, int(recent["step"].max()))
    metrics["live_dm_pvalue_worse"] = worse.pvalue
    if n < cfg.window:
        return LiveReport(metrics, None)
    if metrics["live_coverage_95"] < cfg.min_coverage_95:
        return LiveReport(metrics, f"live 95 % coverage {metrics['live_coverage_95']:.2f} over "
                          f"the last {n} forecasts is below {cfg.min_coverage_95}")
    if worse.pvalue < cfg.alpha:
        return LiveReport(metrics, f"the live point forecast is significantly worse than "
                          f"persistence over the last {n} forecasts (DM p {worse.pvalue:.3g})")
    return LiveReport(metrics, None)
