"""Predictive distributions: the EWMA volatility every scale starts from, the model's
location/scale mapped to cumulative log returns, split-conformal calibration on the
validation span, and quantiles in price units.

The model predicts, per future step, a location and a scale (a Gaussian head). Its scale is a
learned multiplicative correction of the EWMA volatility of daily log returns (lambda 0.94,
RiskMetrics) at the forecast origin: with the head initialised at zero the model starts *at*
the EWMA band and departs from it only as far as the data support. Intervals are then
calibrated by split-conformal prediction on the validation span (windows the weights were not
fitted on): the empirical quantiles of the standardised residuals replace the Gaussian ones,
so fat tails and a mis-scaled head are corrected and coverage holds on series never seen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

# Central 80 % and 95 % intervals plus the median.
QUANTILES = (0.025, 0.1, 0.5, 0.9, 0.975)


def conformal_z(z: np.ndarray, levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """Split-conformal quantiles of standardised residuals z [W, h] -> [h, Q]: for level q the
    ceil((n+1) q)-th smallest (upper levels) or floor((n+1) q)-th (lower levels), so each
    central interval covers with probability >= its nominal level on exchangeable data."""
    z = np.asarray(z, dtype=np.float64)
    n = len(z)
    out = np.empty((z.shape[1], len(levels)))
    for j, q in enumerate(levels):
        if q > 0.5:
            level = min(1.0, np.ceil((n + 1) * q) / n)
            out[:, j] = np.quantile(z, level, axis=0, method="higher")
        elif q < 0.5:
            level = max(0.0, np.floor((n + 1) * q) / n)
            out[:, j] = np.quantile(z, level, axis=0, method="lower")
        else:
            out[:, j] = np.quantile(z, 0.5, axis=0)
    return out


def calibrated_z(z: np.ndarray, levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """Calibration quantiles [h, Q] from standardised validation residuals z [W, h]. One step:
    exactly ``conformal_z``. Several: the steps share one shape, estimated on all W x h
    residuals, and each step keeps its own level, the median |z| of that step relative to
    all steps'; so the tails at steps 3-5 rest on every residual, not on a handful of jumps
    per step, while a step the scale under- or over-states is still corrected."""
    z = np.asarray(z, dtype=np.float64)
    if z.shape[1] == 1:
        return conformal_z(z, levels)
    level = np.median(np.abs(z), axis=0)
    level = level / np.median(np.abs(z)) if np.median(np.abs(z)) > 0 else np.ones_like(level)
    level = np.where(level > 0, level, 1.0)
    pooled = conformal_z((z / level[None, :]).reshape(-1, 1), levels)  # [1, Q]
    return level[:, None] * pooled


def gaussian_z(horizon: int, levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """Standard normal quantiles [h, Q] (before calibration; the EWMA baseline's)."""
    return np.tile(norm.ppf(levels), (horizon, 1))


def quantile_prices(loc: np.ndarray, scale: np.ndarray, z: np.ndarray, last_close: np.ndarray,
                    log_space: bool = True) -> np.ndarray:
    """Quantile forecasts [W, h, Q] in price units from a location and scale [W, h] of the
    cumulative log return (or of the price itself when ``log_space`` is False) and the
    standardised quantiles z [h, Q] (or one set per origin [W, h, Q])."""
    z = np.asarray(z, dtype=np.float64)
    values = loc[:, :, None] + scale[:, :, None] * (z if z.ndim == 3 else z[None, :, :])
    if not log_space:
        return values
    return np.asarray(last_close, dtype=np.float64)[:, None, None] * np.exp(values)


def central_interval(quantiles: np.ndarray, levels: tuple[float, ...],
                     coverage: float) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds [W, h] of the central ``coverage`` interval (0.8, 0.95) from
    quantiles [W, h, Q] at ``levels``."""
    lo = levels.index(round((1 - coverage) / 2, 6))
    hi = levels.index(round(1 - (1 - coverage) / 2, 6))
    return quantiles[:, :, lo], quantiles[:, :, hi]


def base_scale(transformer, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
    """The transformer's daily volatility (its ``daily_scale``: range or close EWMA, HAR) at
    each origin expressed in the model's scaled output units [W, out]: the scale the model's
    head starts from (``transformer`` is a fitted SeriesTransformer; its target says how a
    log-return volatility maps to its units)."""
    close = frame["Close"].to_numpy(dtype=np.float64)
    sigma = transformer.daily_scale.daily_sd(frame, origins)  # daily sd   [W, 1] or [W, h]
    base = transformer.target.base_scale(sigma, close[origins], transformer.horizon)
    if transformer.include_input:  # echoed inputs are known: any positive scale will do
        base = np.concatenate([np.ones((len(origins), transformer.sequence_length)), base], axis=1)
    return base.astype(np.float32)


def target_distribution(transformer, loc: np.ndarray, scale: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, bool]:
    """The model's future outputs (scaled location and scale [W, h]) as the location and scale
    of the cumulative log return at each step (or of the price, for the ``price`` target).
    Returns (loc, scale, log_space)."""
    target = transformer.target
    loc, scale = target.distribution(np.asarray(loc, np.float64), np.asarray(scale, np.float64))
    return loc, scale, target.log_space
