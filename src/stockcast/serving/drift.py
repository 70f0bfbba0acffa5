"""Drift as a sequential test: Page's CUSUM on the size of each forecast's standardised miss.

A daily significance test at 5 % raises a false alarm every twenty calm days or so; a CUSUM
accumulates evidence instead, from the first scored forecast, and its threshold fixes how
often a calm model is flagged over a whole year. The statistic is each one-step forecast's
log-move, standardised by its own 95 % interval (|z| is 1.96 on the interval's edge), capped
so that a single crash day cannot raise the alarm alone:

    S_0 = 0,  S_t = max(0, S_{t-1} + min(|z_t|, cap) - reference),  drift while S_t > threshold

The defaults (reference 1.4, cap 4, threshold 3.5) come from ``bench/drift.py``: calm sequences
are block-bootstrapped standardised errors of the bundled series' EWMA band, the shock
triples the moves the band expects; see docs/operating.md for the measured rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def standardised_moves(scored: pd.DataFrame) -> np.ndarray:
    """|z| of each scored forecast: log(actual / forecast) over the log-width of its 95 %
    interval / (2 x 1.96), so a move to the interval's edge is 1.96."""
    actual, point = scored["actual"].to_numpy(float), scored["forecast"].to_numpy(float)
    lo, hi = scored["lower_95"].to_numpy(float), scored["upper_95"].to_numpy(float)
    scale = np.log(hi / lo) / (2 * Z95)
    return np.abs(np.log(actual / point)) / np.maximum(scale, 1e-12)


@dataclass(frozen=True)
class Cusum:
    """The CUSUM path's last value, its maximum, when it first crossed, and the threshold."""

    statistic: float
    peak: float
    threshold: float
    first_alarm: int | None  # index of the first forecast at which S exceeded the threshold

    @property
    def alarm(self) -> bool:
        """True while the statistic is above the threshold."""
        return self.statistic > self.threshold


def cusum(moves: np.ndarray, reference: float, cap: float, threshold: float) -> Cusum:
    """Page's one-sided CUSUM of ``min(moves, cap) - reference``."""
    s, peak, first = 0.0, 0.0, None
    for i, v in enumerate(np.minimum(np.asarray(moves, float), cap)):
        s = max(0.0, s + v - reference)
        peak = max(peak, s)
        if first is None and s > threshold:
            first = i
    return Cusum(s, peak, threshold, first)
