"""Kupiec, Christoffersen and the Basel traffic light against hand computations."""

import math

import numpy as np
import pytest

from stockcast.evaluation.tail_backtests import (
    christoffersen_independence,
    in_red_zone,
    kupiec_pof,
    tail_backtest,
    traffic_light,
)

HITS = np.zeros(20, dtype=bool)
HITS[[3, 4, 10]] = True  # three exceedances, two of them on consecutive days


def test_kupiec_by_hand():
    lr, p = kupiec_pof(HITS, 0.05)
    by_hand = (-2 * (17 * math.log(0.95) + 3 * math.log(0.05))
               + 2 * (17 * math.log(17 / 20) + 3 * math.log(3 / 20)))
    assert lr == pytest.approx(by_hand)
    assert p == pytest.approx(math.erfc(math.sqrt(by_hand / 2)))  # chi2(1) survival
    assert kupiec_pof(np.zeros(250, bool), 0.025)[0] == pytest.approx(-2 * 250 * math.log(0.975))


def test_christoffersen_by_hand():
    # transitions over the 19 consecutive pairs: n01 = 2, n11 = 1, n10 = 2, n00 = 14
    lr, p = christoffersen_independence(HITS)
    pi, pi0, pi1 = 3 / 19, 2 / 16, 1 / 3
    null = 16 * math.log(1 - pi) + 3 * math.log(pi)
    alt = 14 * math.log(1 - pi0) + 2 * math.log(pi0) + 2 * math.log(1 - pi1) + math.log(pi1)
    assert lr == pytest.approx(-2 * (null - alt))
    assert 0 < p < 1
    clustered = np.zeros(100, bool)
    clustered[40:45] = True  # five exceedances in a row: a model that is slow to react
    assert christoffersen_independence(clustered)[1] < 0.001


def test_basel_zones_match_the_published_table():
    # 250 days of a 99 % VaR: green 0-4, yellow 5-9, red 10 or more.
    assert [traffic_light(x, 250, 0.01) for x in (0, 4, 5, 9, 10, 15)] == [
        "green", "green", "yellow", "yellow", "red", "red"]
    # The same red zone for arrays of counts (the drift simulation reads one per day).
    x, n = np.array([0, 4, 5, 9, 10, 15, 1, 2]), np.array([250] * 6 + [20, 20])
    assert in_red_zone(x, n, 0.01).tolist() == [traffic_light(a, b, 0.01) == "red"
                                                for a, b in zip(x, n, strict=True)]


def test_tail_backtest_counts_values_below_the_lower_quantile():
    actual = np.array([100.0, 90.0, 100.0, 80.0])
    lower = np.array([95.0, 95.0, 95.0, 95.0])
    result = tail_backtest(actual, lower, 0.025)
    assert (result.n, result.exceedances) == (4, 2)
    assert result.zone == traffic_light(2, 4, 0.025)
