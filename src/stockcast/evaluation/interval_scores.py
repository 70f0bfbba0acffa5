"""Scores for interval and quantile forecasts, in price units: the pinball (quantile) loss,
the Winkler / Gneiting-Raftery interval score, coverage and width."""

from __future__ import annotations

import numpy as np

from stockcast.modeling.intervals import central_interval


def pinball_loss(quantiles: np.ndarray, actual: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """Pinball loss per (origin, step) [W, h], averaged over the quantile levels (price units)."""
    q = np.asarray(levels)[None, None, :]
    diff = np.asarray(actual)[:, :, None] - quantiles  # [W, h, Q]
    return np.mean(np.maximum(q * diff, (q - 1) * diff), axis=2)


def interval_score(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray,
                   coverage: float) -> np.ndarray:
    """Interval score per (origin, step) [W, h] of the central ``coverage`` interval: its width
    plus 2/alpha times how far the actual value falls outside (lower is better)."""
    alpha = 1.0 - coverage
    below = np.maximum(lower - actual, 0.0)
    above = np.maximum(actual - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


def coverage_rate(lower: np.ndarray, upper: np.ndarray, actual: np.ndarray) -> float:
    """Share of actual values inside [lower, upper]."""
    return float(np.mean((actual >= lower) & (actual <= upper)))


def width_bp(lower: np.ndarray, upper: np.ndarray, last_close: np.ndarray) -> float:
    """Mean interval width in basis points of the last close."""
    return float(np.mean((upper - lower) / np.asarray(last_close)[:, None]) * 1e4)


def relative_interval_score(quantiles: np.ndarray, levels: tuple[float, ...],
                            actual: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The 95 % interval score per origin and step relative to the last close [W, h]: the loss
    the DM tests between interval forecasters compare (scale-free, so a series that rose
    tenfold over the span does not weigh its last year tenfold)."""
    lo, hi = central_interval(quantiles, levels, 0.95)
    return interval_score(lo, hi, actual, 0.95) / np.asarray(last)[:, None]
