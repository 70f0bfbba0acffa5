"""The CUSUM drift statistic, step by step."""

import numpy as np
import pandas as pd
import pytest

from stockcast.serving.drift import Z95, cusum, standardised_moves


def test_cusum_by_hand():
    path = cusum(np.array([0.0, 5.0, 5.0, 0.0, 0.0]), reference=1.6, cap=4.0, threshold=3.0)
    # S: 0, 2.4, 4.8 (first above 3: index 2), 3.2, 1.6; a 5 counts as the cap, 4
    assert path.statistic == pytest.approx(1.6) and path.peak == pytest.approx(4.8)
    assert path.first_alarm == 2 and not path.alarm


def test_a_move_to_the_intervals_edge_is_1_96():
    row = pd.DataFrame({"actual": [110.0], "forecast": [100.0], "lower_95": [100 / 1.1],
                        "upper_95": [110.0]})
    assert standardised_moves(row)[0] == pytest.approx(Z95)


def test_calm_years_rarely_alarm_and_a_stale_band_is_caught_within_a_week():
    from stockcast.serving.drift_simulation import simulate

    # Bootstrapped real errors of the bundled series (fat tails, clustering kept).
    result = simulate(sequences=400, seed=7)
    assert result["false_alarm_rate"] <= 0.07  # 5 % target, plus this sample's error
    assert result["stale"]["median_delay"] <= 7 and result["stale"]["detected_within_20"] > 0.9
