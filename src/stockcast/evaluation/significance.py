"""Is one forecaster better than another? The one-sided Diebold-Mariano test with the
Harvey-Leybourne-Newbold small-sample correction, on per-origin losses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

TEST_NAME = "Diebold-Mariano, HLN-corrected, one-sided"


@dataclass(frozen=True)
class DMResult:
    """A one-sided Diebold-Mariano test of 'forecaster A has the lower expected loss'."""

    statistic: float  # HLN-corrected; negative when A's loss is lower
    pvalue: float
    n: int  # loss differentials (forecast origins) used
    mean_diff: float  # mean of loss_a - loss_b


def dm_test(loss_a: np.ndarray, loss_b: np.ndarray, horizon: int,
            extra_variance: float = 0.0) -> DMResult:
    """One-sided DM test (H1: A better) on per-origin losses [W] or [W, h] (averaged over the
    steps). The long-run variance uses autocovariances up to lag h-1, since h-step forecast
    errors overlap; the Harvey-Leybourne-Newbold factor and Student-t(n-1) reference
    distribution correct its small-sample size. ``extra_variance`` is added to the variance
    of the mean difference: noise the span does not show, such as two fits' training
    randomness (``promotion.seed_sd``)."""
    return pooled_dm_test([(loss_a, loss_b)], horizon, extra_variance)


def pooled_dm_test(spans: Sequence[tuple[np.ndarray, np.ndarray]], horizon: int,
                   extra_variance: float = 0.0) -> DMResult:
    """The DM test of ``dm_test`` on several disjoint out-of-sample spans at once (walk-forward
    folds, each forecast by its own fits): the mean loss difference over every origin, whose
    variance is the sum of each span's share squared times its own long-run variance (each
    span centred on its own mean: a fold's level is not noise of another). One span is
    exactly ``dm_test``."""
    diffs = []
    for loss_a, loss_b in spans:
        d = np.asarray(loss_a, np.float64) - np.asarray(loss_b, np.float64)
        diffs.append(d.mean(axis=1) if d.ndim == 2 else d)
    n, h = sum(len(d) for d in diffs), max(1, int(horizon))
    if n < 2:
        return DMResult(float("nan"), 1.0, n, float(np.mean(np.concatenate(diffs))) if n
                        else float("nan"))
    dbar = float(np.concatenate(diffs).mean())
    variance = sum(len(d) * _long_run_variance(d, h) for d in diffs if len(d)) / n**2
    if variance <= 0 and extra_variance <= 0:  # identical losses: no evidence either way
        return DMResult(0.0, 0.5, n, dbar)
    dm = dbar / np.sqrt(variance + extra_variance)
    hln = np.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 1e-12) / n)
    statistic = float(dm * hln)
    return DMResult(statistic, float(stats.t.cdf(statistic, df=n - 1)), n, dbar)


def training_noise(references: Sequence[np.ndarray], seed_sd: float, fits: int) -> float:
    """The variance the fits add to a pooled mean loss difference, which no span shows: each
    span (a fold) was forecast by ``fits`` independently trained models whose loss varies by
    ``seed_sd`` relative to its reference loss (``references``: per span, the losses the
    relative noise is of), each weighted by its share of the origins."""
    total = sum(len(r) for r in references)
    if not total:
        return 0.0
    return sum((len(r) / total) ** 2 * fits * (seed_sd * float(np.mean(r))) ** 2
               for r in references)


def _long_run_variance(d: np.ndarray, h: int) -> float:
    """Autocovariances of ``d`` up to lag h-1 (the variance alone when that sum is not
    positive), never negative."""
    m = len(d)
    centred = d - d.mean()
    gamma = [float(np.dot(centred[k:], centred[: m - k]) / m) for k in range(min(h, m))]
    lrv = gamma[0] + 2.0 * sum(gamma[1:])
    return max(lrv if lrv > 0 else gamma[0], 0.0)
