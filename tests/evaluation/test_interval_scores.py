"""Interval and quantile scores against values worked out by hand."""

import numpy as np
import pytest

from stockcast.evaluation.interval_scores import coverage_rate, interval_score, pinball_loss, width_bp


def test_interval_score_by_hand():
    lower, upper = np.array([[90.0], [90.0], [90.0]]), np.array([[110.0], [110.0], [110.0]])
    actual = np.array([[100.0], [80.0], [115.0]])
    # width 20; below by 10 -> 20 + 40 x 10; above by 5 -> 20 + 40 x 5 (2 / alpha = 40)
    np.testing.assert_allclose(interval_score(lower, upper, actual, 0.95).ravel(), [20, 420, 220])
    assert coverage_rate(lower, upper, actual) == pytest.approx(1 / 3)
    assert width_bp(lower, upper, np.array([100.0, 100.0, 100.0])) == pytest.approx(2000)


def test_pinball_loss_by_hand():
    q = np.array([[[90.0, 100.0, 110.0]]])  # [W=1, h=1, Q=3]
    # actual 105: 0.1 x 15 = 1.5; 0.5 x 5 = 2.5; (0.9 - 1) x (-5) = 0.5 -> mean 1.5
    assert pinball_loss(q, np.array([[105.0]]), (0.1, 0.5, 0.9))[0, 0] == pytest.approx(1.5)
