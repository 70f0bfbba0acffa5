"""Is one forecaster better than another? The one-sided Diebold-Mariano test with the
Harvey-Leybourne-Newbold small-sample correction, on per-origin losses."""

from __future__ import annotations

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
    d = np.asarray(loss_a, np.float64) - np.asarray(loss_b, np.float64)
    if d.ndim == 2:
        d = d.mean(axis=1)
    n, h = len(d), max(1, int(horizon))
    if n < 2:
        return DMResult(float("nan"), 1.0, n, float(np.mean(d)) if n else float("nan"))
    dbar = float(d.mean())
    centred = d - dbar
    gamma = [float(np.dot(centred[k:], centred[: n - k]) / n) for k in range(min(h, n))]
    lrv = gamma[0] + 2.0 * sum(gamma[1:])
    if lrv <= 0:
        lrv = gamma[0]
    if lrv <= 0 and extra_variance <= 0:  # identical losses: no evidence either way
        return DMResult(0.0, 0.5, n, dbar)
    dm = dbar / np.sqrt(max(lrv, 0.0) / n + extra_variance)
    hln = np.sqrt(max(n + 1 - 2 * h + h * (h - 1) / n, 1e-12) / n)
    statistic = float(dm * hln)
    return DMResult(statistic, float(stats.t.cdf(statistic, df=n - 1)), n, dbar)
