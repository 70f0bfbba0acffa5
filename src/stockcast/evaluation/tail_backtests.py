"""The risk field's standard backtests of a lower quantile (a value-at-risk forecast): are its
exceedances as frequent as they should be (Kupiec's proportion-of-failures test), do they come
independently rather than in clusters (Christoffersen's test of the first-order Markov
alternative), and the Basel traffic-light zone of the exceedance count."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom, chi2

# Basel: yellow from a cumulative probability of 95 %, red from 99.99 % (with 250 days at the
# 1 % level: green 0-4 exceedances, yellow 5-9, red 10 or more).
YELLOW_FROM, RED_FROM = 0.95, 0.9999


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


@dataclass(frozen=True)
class TailBacktest:
    """Exceedances of a lower quantile at level ``p`` over ``n`` forecasts, and the tests."""

    n: int
    exceedances: int
    p: float
    kupiec_lr: float
    kupiec_pvalue: float
    christoffersen_lr: float
    christoffersen_pvalue: float
    zone: str  # green | yellow | red (Basel traffic light)


def kupiec_pof(exceeded: np.ndarray, p: float) -> tuple[float, float]:
    """Kupiec's likelihood ratio of the exceedance rate x/n against p, and its chi2(1) p-value."""
    hits = np.asarray(exceeded, dtype=bool)
    n, x = len(hits), int(hits.sum())
    if n == 0:
        return math.nan, math.nan
    rate = x / n
    lr = -2 * (_xlogy(n - x, 1 - p) + _xlogy(x, p)) + 2 * (_xlogy(n - x, 1 - rate)
                                                           + _xlogy(x, rate))
    lr = max(lr, 0.0)
    return lr, float(chi2.sf(lr, 1))


def christoffersen_independence(exceeded: np.ndarray) -> tuple[float, float]:
    """Christoffersen's likelihood ratio of independent exceedances against a first-order
    Markov chain (an exceedance makes the next more likely), and its chi2(1) p-value."""
    hits = np.asarray(exceeded, dtype=int)
    if len(hits) < 2:
        return math.nan, math.nan
    prev, nxt = hits[:-1], hits[1:]
    n00 = int(np.sum((prev == 0) & (nxt == 0)))
    n01 = int(np.sum((prev == 0) & (nxt == 1)))
    n10 = int(np.sum((prev == 1) & (nxt == 0)))
    n11 = int(np.sum((prev == 1) & (nxt == 1)))
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    null = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    alt = (_xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1))
    lr = max(-2 * (null - alt), 0.0)
    return lr, float(chi2.sf(lr, 1))


def traffic_light(exceedances: int, n: int, p: float) -> str:
    """The Basel zone of ``exceedances`` in ``n`` forecasts of a level-``p`` quantile."""
    cdf = float(binom.cdf(exceedances, n, p))
    return "red" if cdf >= RED_FROM else "yellow" if cdf >= YELLOW_FROM else "green"


def in_red_zone(exceedances: np.ndarray, n: np.ndarray, p: float) -> np.ndarray:
    """``traffic_light(...) == "red"`` for arrays of counts (the drift simulation's days)."""
    return binom.cdf(exceedances, n, p) >= RED_FROM


def tail_backtest(actual: np.ndarray, lower: np.ndarray, p: float) -> TailBacktest:
    """All three for realised values ``actual`` against lower quantiles ``lower`` at level p."""
    exceeded = np.asarray(actual, float) < np.asarray(lower, float)
    kupiec = kupiec_pof(exceeded, p)
    christoffersen = christoffersen_independence(exceeded)
    x = int(exceeded.sum())
    return TailBacktest(len(exceeded), x, p, *kupiec, *christoffersen,
                        traffic_light(x, len(exceeded), p) if len(exceeded) else "green")
