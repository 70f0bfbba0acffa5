"""The CUSUM drift statistic, step by step."""

import numpy as np
import pandas as pd
import pytest

from stockcast.serving.drift import (
    MIN_REFERENCE,
    REALISED,
    Z95,
    cusum,
    log_range_ratios,
    range_reference,
    standardised_moves,
    with_realised_variance,
)


def test_cusum_by_hand():
    path = cusum(np.array([0.0, 5.0, 5.0, 0.0, 0.0]), reference=1.6, cap=4.0, threshold=3.0)
    # S: 0, 2.4, 4.8 (first above 3: index 2), 3.2, 1.6; a 5 counts as the cap, 4
    assert path.statistic == pytest.approx(1.6) and path.peak == pytest.approx(4.8)
    assert path.first_alarm == 2 and not path.alarm


def test_a_move_to_the_intervals_edge_is_1_96():
    row = pd.DataFrame({"actual": [110.0], "forecast": [100.0], "lower_95": [100 / 1.1],
                        "upper_95": [110.0]})
    assert standardised_moves(row)[0] == pytest.approx(Z95)


def ohlc(closes, spread=0.01):
    """A price frame whose every day opens at the last close and ranges +-spread around it."""
    closes = np.asarray(closes, float)
    opens = np.r_[closes[0], closes[:-1]]
    return pd.DataFrame({"Date": pd.bdate_range("2024-01-01", periods=len(closes)),
                         "Open": opens, "High": np.maximum(opens, closes) * (1 + spread),
                         "Low": np.minimum(opens, closes) * (1 - spread), "Close": closes})


def test_the_range_ratio_is_the_days_range_sd_over_the_intervals_sd():
    frame = ohlc([100.0, 100.0])  # day 2: no gap, no body, high/low +-1 %
    row = pd.DataFrame({"date": [frame["Date"].iloc[1]], "step": [1],
                        "q0.025": [100 * np.exp(-Z95 * 0.02)], "q0.975": [100 * np.exp(Z95 * 0.02)]})
    rows = with_realised_variance(row, frame)
    garman_klass = 0.5 * np.log(1.01 / 0.99) ** 2  # O = C: the body term is zero
    assert rows[REALISED].iloc[0] == pytest.approx(garman_klass)
    assert log_range_ratios(rows)[0] == pytest.approx(np.log(np.sqrt(garman_klass) / 0.02))
    # Prices without a range (a close-only CSV) leave the rows as they were.
    assert REALISED not in with_realised_variance(row, frame[["Date", "Close"]])
    # A served band the adaptation narrowed to 0.8 of the model's own width, as the row
    # records: the ratio is still against the model's width, as the reference's is.
    served = row.assign(**{"q0.025": 100 * np.exp(-Z95 * 0.016),
                           "q0.975": 100 * np.exp(Z95 * 0.016), "band_ratio_95": 0.8})
    narrowed = with_realised_variance(served, frame)
    assert log_range_ratios(narrowed)[0] == pytest.approx(log_range_ratios(rows)[0])
    unrecorded = narrowed.drop(columns="band_ratio_95")  # a ledger from before the adaptation
    assert log_range_ratios(unrecorded)[0] == pytest.approx(np.log(np.sqrt(garman_klass) / 0.016))


def test_the_reference_needs_enough_test_span_days_the_frame_still_holds():
    rng = np.random.default_rng(0)
    frame = ohlc(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 80))))
    band = np.exp(Z95 * 0.015)
    table = pd.DataFrame({"date": frame["Date"].iloc[1:], "step": 1,
                          "q0.025": frame["Close"].shift().iloc[1:] / band,
                          "q0.975": frame["Close"].shift().iloc[1:] * band})
    ref = range_reference(table, frame, "v1's test span")
    assert ref.n == 79 and ref.source == "v1's test span" and ref.sd > 0
    u = log_range_ratios(with_realised_variance(table, frame))
    assert ref.mean == pytest.approx(u.mean()) and ref.sd == pytest.approx(u.std(ddof=1))
    assert range_reference(table.head(MIN_REFERENCE - 1), frame, "x") is None
    assert range_reference(table, frame.head(10), "x") is None  # the dates are gone
    assert range_reference(None, frame, "x") is None


def test_calm_years_rarely_alarm_and_a_tripling_is_caught_within_a_week():
    from stockcast.serving.drift_simulation import simulate

    # Bootstrapped real days of the bundled series (fat tails, clustering, range kept).
    result = simulate(sequences=400, seed=7)
    rng = result["range"]
    assert rng["false_alarm_rate"] <= 0.07  # 5 % target, plus this sample's error
    assert rng["stale"]["median_delay"] <= 5 and rng["stale"]["detected_within_20"] > 0.95
    assert rng["adapting"]["median_delay"] <= 6
    # The fallback without a reference is slower but no more alarming.
    assert result["moves"]["false_alarm_rate"] <= 0.07
    assert result["moves"]["stale"]["median_delay"] > rng["stale"]["median_delay"]
    # Counting every path that can raise DRIFT (the range CUSUM, both bands' coverage
    # CUSUMs, the red zone from its minimum sample): still rare in calm years, still fast.
    every = result["any"]
    assert every["false_alarm_rate"] <= 0.07 and every["stale"]["median_delay"] <= 5
    assert every["false_alarm_rate"] >= rng["false_alarm_rate"]
    for band in ("band80", "band95", "red"):
        assert result[band]["false_alarm_rate"] <= 0.03
        assert result[band]["stale"]["detected_within_20"] > 0.05  # each path does fire


def test_the_false_alarm_targets_hold_with_the_bands_as_served():
    from stockcast.config import IntervalConfig
    from stockcast.modeling.adaptive import Tracking
    from stockcast.serving.drift_simulation import simulate

    # The monitor reads the served bands, which track the forecaster's misses over the 250
    # realised days before each origin; every DRIFT path still rarely fires in calm years.
    served = simulate(sequences=300, seed=7, tracking=Tracking.from_config(IntervalConfig()))
    static = simulate(sequences=300, seed=7)
    every = served["any"]
    assert every["false_alarm_rate"] <= 0.07  # 5 % target, plus this sample's error
    assert every["stale"]["median_delay"] <= 5 and every["adapting"]["median_delay"] <= 6
    # The tracked bands follow a stale model's misses, so their own CUSUMs fire later than
    # a band calibrated once: the range CUSUM, on the model's own width, still catches it.
    for band in ("band80", "band95"):
        assert served[band]["stale"]["median_delay"] > static[band]["stale"]["median_delay"]
    assert served["range"]["stale"]["median_delay"] <= 5
    # What the tracking is for: after a stale tripling or a shift of the moves by one sd (a
    # trend the model misses, which no monitor flags), the served bands cover far more.
    after, before = served["coverage_after_shock"], static["coverage_after_shock"]
    for shock in ("stale", "bias"):
        assert after[shock]["coverage_95"] > before[shock]["coverage_95"] + 0.05
        assert after[shock]["coverage_80"] > before[shock]["coverage_80"] + 0.1
    assert 0.92 <= after["bias"]["coverage_95"] <= 0.97
