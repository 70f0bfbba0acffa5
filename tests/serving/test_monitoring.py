"""The forecast ledger and live monitoring of a champion."""

import numpy as np
import pandas as pd

from stockcast.config import MonitorConfig
from stockcast.serving.drift import Z95, range_reference
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


def ranged(closes, spread):
    """OHLC prices: each day opens at the last close and ranges spread[i] beyond the body."""
    closes, spread = np.asarray(closes, float), np.broadcast_to(spread, len(closes))
    opens = np.r_[closes[0], closes[:-1]]
    return pd.DataFrame({"Date": pd.bdate_range("2024-01-01", periods=len(closes)),
                         "Open": opens, "High": np.maximum(opens, closes) * (1 + spread),
                         "Low": np.minimum(opens, closes) * (1 - spread), "Close": closes})


def calm_days(n, seed, sd=0.01):
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, sd, n)))


def one_step_table(frame, sd):
    """A test-span table: one-step 95 % bands of daily sd ``sd`` around each last close."""
    last, band = frame["Close"].shift().iloc[1:], np.exp(Z95 * sd)
    return pd.DataFrame({"date": frame["Date"].iloc[1:], "step": 1, "q0.025": last / band,
                         "q0.975": last * band})


def test_drift_on_the_days_range_against_the_champions_own_test_span(tmp_path):
    history = ranged(calm_days(300, 1), 0.006)
    reference = range_reference(one_step_table(history, 0.0125), history, "v1's test span")
    # Live: 40 calm days, then the days' moves and ranges triple.
    moves = np.r_[np.random.default_rng(2).normal(0, 0.01, 40),
                  np.random.default_rng(3).normal(0, 0.03, 10)]
    closes = 100 * np.exp(np.cumsum(moves))
    frame = ranged(closes, np.r_[np.full(40, 0.006), np.full(10, 0.018)])
    band = 0.0125 * 2 * Z95  # the champion's 95 % log-width, as in its test span
    for i in range(len(closes) - 1):
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i],
                                                width=np.tanh(band / 2)))
    scored = score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)
    calm = live_report(scored.head(39), MonitorConfig(), reference)
    assert calm.drift is None and calm.statistic.startswith("range CUSUM (reference: v1's")
    flagged = [n for n in range(40, len(scored) + 1)
               if live_report(scored.head(n), MonitorConfig(), reference).drift]
    assert flagged and flagged[0] - 39 <= 5  # within five sessions of the tripling
    report = live_report(scored, MonitorConfig(), reference)
    assert "range CUSUM is" in report.drift
    assert report.metrics["live_cusum"] > report.metrics["live_cusum_threshold"] == 4.25
    # Without the reference (an older champion) the move sizes judge, and the record says so.
    assert live_report(scored, MonitorConfig()).statistic == "|z| CUSUM (no reference)"


def test_the_lower_tail_is_backtested_with_the_basel_zone(tmp_path):
    rng = np.random.default_rng(3)
    # 60 days whose falls breach the 2.5 % quantile 12 times: red zone
    moves = np.where(np.arange(60) % 5 == 0, -0.08, rng.normal(0, 0.003, 60))
    closes = list(100 * np.exp(np.cumsum(np.r_[0, moves])))
    frame = ranged(closes, 0.002)
    history = ranged(calm_days(100, 4, 0.02), 0.01)
    reference = range_reference(one_step_table(history, 0.02), history, "v1's test span")
    for i in range(len(closes) - 1):
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i]))
    scored = score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)
    report = live_report(scored, MonitorConfig(), reference)
    # Isolated falls between quiet days do not build up a CUSUM; the tail backtest sees them.
    assert report.metrics["live_cusum"] < report.metrics["live_cusum_threshold"]
    assert report.metrics["live_tail_exceedances"] == 12 and report.zone == "red"
    assert report.metrics["live_kupiec_pvalue"] < 1e-6
    assert report.drift and "Basel red zone" in report.drift


def _scored_days(tmp_path, moves, width=0.05, start=100.0):
    """Score one-step forecasts of a band +-width (95 %) and +-width/2 (80 %) on ``moves``."""
    closes = list(start * np.exp(np.cumsum(np.r_[0, moves])))
    frame = prices(closes)
    for i in range(len(closes) - 1):
        record_forecast(tmp_path, "T", forecast(frame["Date"].iloc[i], closes[i], width))
    return score_ledger(pd.read_parquet(tmp_path / "T" / "ledger.parquet"), frame)


def test_one_forecast_below_the_band_raises_no_drift_and_no_zone(tmp_path):
    scored = _scored_days(tmp_path, [-0.08])  # the first scored forecast falls through the floor
    report = live_report(scored, MonitorConfig())
    assert report.drift is None and report.zone.startswith("too few: 1 forecasts")
    assert "live_basel_zone" not in report.metrics
    assert report.metrics["live_tail_exceedances"] == 1
    # Two calm forecasts are not "yellow" either (Basel's cumulative probability of 0 in 2).
    calm = _scored_days(tmp_path / "calm", [0.001, -0.002])
    assert live_report(calm, MonitorConfig()).zone.startswith("too few")
    # From the minimum sample on, the zone is read.
    many = _scored_days(tmp_path / "many", np.full(25, 0.001))
    assert live_report(many, MonitorConfig()).zone == "green"


def test_an_80_band_that_misses_too_often_is_drift_even_when_the_95_band_holds(tmp_path):
    # 80 days: every other day moves 3.5 % up or down (outside the +-2.5 % 80 % band, inside
    # the +-5 % 95 % one), the rest 0.1 %: the 80 % band misses half the time, the 95 % never.
    moves = np.select([np.arange(80) % 4 == 0, np.arange(80) % 4 == 2], [0.035, -0.035], -0.001)
    report = live_report(_scored_days(tmp_path, moves), MonitorConfig())
    assert report.metrics["live_coverage_95"] == 1.0
    assert report.metrics["live_band80_cusum"] > report.metrics["live_band80_cusum_threshold"]
    assert report.metrics["live_band95_cusum"] == 0.0
    assert report.drift and "the 80 % band missed 40 of 80" in report.drift
    # The 10 % quantile's backtest sees it too (20 falls through it in 80; none through 2.5 %).
    assert report.metrics["live_tail80_exceedances"] == 20
    assert report.metrics["live_kupiec80_pvalue"] < 1e-3
    assert report.metrics["live_tail_exceedances"] == 0
    # ...and the band's CUSUM clears only once covered days accumulate.
    healed = np.r_[moves, np.full(120, 0.001)]
    assert live_report(_scored_days(tmp_path / "healed", healed), MonitorConfig()).drift is None
