"""The forecast ledger and live monitoring of a champion."""

import numpy as np
import pandas as pd

from stockcast.config import MonitorConfig
from stockcast.serving.ledger import record_forecast, score_ledger
from stockcast.serving.monitoring import live_report


def forecast(last_date, close, width=0.05, version="1"):
    last_date = pd.Timestamp(last_date)
    date = last_date + pd.offsets.BDay(1)
    return pd.DataFrame({"ticker": ["T"], "date": [date], "step": [1], "forecast": [close],
                         "lower_80": [close * (1 - width / 2)], "upper_80": [close * (1 + width / 2)],
                         "lower_95": [close * (1 - width)], "upper_95": [close * (1 + width)],
                         "model_version": [version], "last_close": [close],
                         "last_date": [last_date]})


def prices(closes, start="2024-01-01"):
    return pd.DataFrame({"Date": pd.bdate_range(start, periods=len(closes)), "Close": closes})


def test_a_forecast_made_on_day_t_is_scored_against_day_t_plus_1(tmp_path):
    frame = prices([100.0, 101.0])
    path = record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[0], 100.0)).path
    record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[0], 100.0))  # a re-run replaces
    ledger = pd.read_parquet(path)
    assert len(ledger) == 1
    scored = score_ledger(ledger, frame)
    assert scored["actual"].tolist() == [101.0]
    report = live_report(scored, MonitorConfig(window=5))
    assert report.metrics["live_scored"] == 1 and report.metrics["live_coverage_95"] == 1.0
    assert report.metrics["live_rmse"] == 1.0 and report.drift is None  # too few to judge
    # Tomorrow's forecast is in the ledger but cannot be scored yet.
    record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[1], 101.0))
    assert len(score_ledger(pd.read_parquet(path), frame)) == 1


def test_collapsing_coverage_is_flagged_as_drift(tmp_path):
    closes = list(100 * 1.2 ** np.arange(8))  # every day jumps far outside the 5 % band
    frame = prices(closes)
    for i in range(7):
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i]))
    scored = score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)
    report = live_report(scored, MonitorConfig(window=5))
    assert report.metrics["live_coverage_95"] == 0.0
    assert report.drift and "CUSUM" in report.drift
    assert report.metrics["live_cusum"] > report.metrics["live_cusum_threshold"]


def test_a_calm_champion_is_not_flagged(tmp_path):
    rng = np.random.default_rng(0)
    closes = list(100 * np.exp(np.cumsum(rng.normal(0, 0.005, 30))))
    frame = prices(closes)
    for i in range(29):
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i]))
    scored = score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)
    report = live_report(scored, MonitorConfig(window=20))
    assert report.metrics["live_coverage_95"] == 1.0 and report.drift is None


def test_drift_is_judged_from_the_first_scored_forecast_of_the_current_champion(tmp_path):
    closes = list(100 * 1.2 ** np.arange(6))  # jumps while v1 served
    closes += [closes[-1]] * 6  # then flat under v2
    frame = prices(closes)
    for i in range(len(closes) - 1):
        version = "1" if i < 5 else "2"
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i], version=version))
    scored = score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)
    v1 = live_report(scored[scored["model_version"] == "1"], MonitorConfig(window=20))
    assert v1.drift and v1.metrics["live_scored"] == 5  # two misses are enough: no wait for 20
    now = live_report(scored, MonitorConfig(window=20))  # v2 is judged on its own forecasts
    assert now.drift is None and now.metrics["live_scored"] == 6


def test_the_lower_tail_is_backtested_with_the_basel_zone(tmp_path):
    rng = np.random.default_rng(3)
    # 60 days whose falls breach the 2.5 % quantile 12 times: red zone
    moves = np.where(np.arange(60) % 5 == 0, -0.08, rng.normal(0, 0.003, 60))
    closes = list(100 * np.exp(np.cumsum(np.r_[0, moves])))
    frame = prices(closes)
    for i in range(len(closes) - 1):
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i]))
    scored = score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)
    report = live_report(scored, MonitorConfig(cusum_threshold=1000))  # the CUSUM looks away
    assert report.metrics["live_tail_exceedances"] == 12 and report.zone == "red"
    assert report.metrics["live_kupiec_pvalue"] < 1e-6
    assert report.drift and "Basel red zone" in report.drift
