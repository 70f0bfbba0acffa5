"""Online adaptive calibration: the interval's quantiles follow the forecaster's recent misses.

Split-conformal quantiles fixed on the validation span (``intervals.calibrated_z``) hold while
the future looks like that span; through a regime change they do not. Here each quantile of
the standardised residual, per horizon step and per level, is *tracked* over the realised
forecasts the forecaster made on the sessions before the origin: online quantile tracking
(the P term of conformal PID control, Angelopoulos et al. 2023; adaptive conformal inference
in score space, Gibbs & Candes 2021), on the log of each bound's distance from the median,
so the gain does not depend on the score's scale:

    q = median + d0 x exp(theta),   theta <- theta + step x (1{miss} - tail)

where d0 is the static bound's distance from the static median and ``tail`` the share of
misses the bound promises (2.5 % for either bound of the 95 % band, 10 % for the 80 % one's).
A miss beyond the upper 95 % bound widens it by about step x 97.5 %, a hit narrows it by
step x 2.5 %: each bound settles where its misses are as frequent as promised, whatever the
regime, and a tripling of the volatility is followed within tens of sessions (tracking the
bound itself rather than its log needs about three times as many misses for a tripling;
bench/served.py, docs/model-and-evaluation.md).

What the tracking aims at is a choice (``Tracking.target``): ``coverage`` (the default) serves
the tracked quantile, so each year's count of misses is held close to the promise; ``score``
serves, per bound, a mix of the static and the tracked quantile weighted by their pinball
loss in price units over the same realised forecasts (an aggregation of experts with gains 0
and ``step``, after Zaffran et al. 2022 and Gibbs & Candes 2022): the bound leans to the static
quantile while the model's own scale follows the regime, so calm years score like the static
bands, at the cost of a year's coverage wandering as a calibrated band's does
(docs/model-and-evaluation.md has the measured trade-off).

Causal by construction: a step-k score of origin s is realised at row s + k, so at origin t
only origins s <= t - k enter (the tracker for step k lags k sessions). The state is replayed
from the static quantile over the last ``window`` realised scores: a pure function of the
rows up to the origin, so the CLI, the forecast flow, the pyfunc and the REST service give
the same interval for the same rows, and nothing is stored or synchronised between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import IntervalConfig
from stockcast.modeling.forecaster import Forecast, forecast_from
from stockcast.modeling.intervals import central_interval

MEDIAN = 0.5
TARGETS = ("coverage", "score")
# target "score": a bound's weight is exp(-SHARPNESS x its loss's excess over the better one's,
# relative): 10 % more loss than the other bound, 5 % of the weight (chosen among 10-300 on the
# year-end case's 35 years, docs/benchmarks.md).
SHARPNESS = 30.0


@dataclass(frozen=True)
class Tracking:
    """How the quantiles adapt: ``window`` realised past forecasts replayed per step, ``step``
    the gain on the log of each quantile (0: the static calibration), ``target`` what the
    served bound aims at (``coverage``: the tracked quantile; ``score``: the static and the
    tracked quantile mixed by their loss; see the module docstring)."""

    window: int = 250
    step: float = 0.1
    target: str = "coverage"

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"tracking target {self.target!r} is not one of {TARGETS}")

    @classmethod
    def from_config(cls, cfg: IntervalConfig) -> Tracking:
        """The tracking the ``intervals`` config section asks for."""
        return cls(cfg.adapt_window, cfg.adapt_step, cfg.adapt_target)

    @property
    def enabled(self) -> bool:
        return self.window > 0 and self.step > 0


def track_quantiles(z0: np.ndarray, scores: np.ndarray, positions: np.ndarray,
                    levels: tuple[float, ...], tracking: Tracking,
                    unit: np.ndarray | None = None) -> np.ndarray:
    """The tracked quantiles [P, h, Q] at each position (a row index into ``scores``).

    ``scores`` [N, h] are the standardised residuals at N consecutive origins (NaN where a
    step's outcome is unknown); ``z0`` [h, Q] the static quantiles the tracking starts from
    (lower levels negative, upper positive). At position p, step k replays the scores of
    positions p - k - window + 1 .. p - k (those that exist and are finite), so nothing
    realised after p is read. The median is not tracked (it is not an interval bound); the
    levels stay ordered. With ``tracking.target`` "score", each bound is the static and the
    tracked quantile mixed by their pinball losses over the same scores, each score's loss in
    ``unit`` [N, h] (the price of one unit of score; None: score units)."""
    z0 = np.asarray(z0, np.float64)
    positions = np.asarray(positions, dtype=np.int64)
    h, n_levels = z0.shape
    lv = np.asarray(levels, np.float64)
    upper, lower = lv > MEDIAN, lv < MEDIAN
    median = z0[:, lv == MEDIAN][:, :1] if (lv == MEDIAN).any() else np.zeros((h, 1))  # [h, 1]
    # Each bound's distance from the median, on its own side (never zero: it must be able to grow).
    d0 = np.where(upper, 1.0, np.where(lower, -1.0, 0.0)) * np.maximum(np.abs(z0 - median), 1e-3)
    theta = np.zeros((len(positions), h, n_levels))
    mixed = tracking.target == "score"
    loss = np.zeros((2, *theta.shape)) if mixed else None  # the static and tracked bound's
    if tracking.enabled and len(positions):
        tail = np.where(upper, 1 - lv, lv)  # the share of misses each bound promises
        for k in range(h):
            first = positions - (k + 1) - tracking.window + 1  # [P]
            for i in range(tracking.window):
                idx = first + i
                ok = idx >= 0
                z = np.full(len(positions), np.nan)
                z[ok] = scores[idx[ok], k]
                ok &= np.isfinite(z)
                if not ok.any():
                    continue
                ok = slice(None) if ok.all() else ok  # a view, not a copy, when all are read
                q = median[k] + d0[k][None, :] * np.exp(theta[ok, k, :])  # [P', Q]
                miss = (upper & (z[ok, None] > q)) | (lower & (z[ok, None] < q))
                if mixed:
                    u = 1.0 if unit is None else unit[idx[ok], k][:, None]
                    loss[0, ok, k] += u * _pinball(z[ok, None], median[k] + d0[k][None, :], lv)
                    loss[1, ok, k] += u * _pinball(z[ok, None], q, lv)
                theta[ok, k, :] += tracking.step * np.where(upper | lower, miss - tail, 0.0)
    tracked = np.where(upper | lower, median[None] + d0[None] * np.exp(theta), z0[None])
    if mixed:
        static = np.where(upper | lower, median + d0, z0)[None]
        weight = _weight_of_second(loss)
        tracked = static + weight * (tracked - static)
    return np.maximum.accumulate(tracked, axis=2)  # q0.025 <= ... <= q0.975


def _pinball(z: np.ndarray, q: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """The pinball (quantile) loss of quantile ``q`` at ``levels`` for the outcome ``z``."""
    return np.where(z >= q, levels * (z - q), (1 - levels) * (q - z))


def _weight_of_second(loss: np.ndarray) -> np.ndarray:
    """The weight of the second of two experts from their summed losses [2, ...]: exponential
    weights on the relative excess over the lower loss (``SHARPNESS``); equal when neither has
    lost anything yet."""
    low = loss.min(axis=0)
    excess = np.divide(loss - low, low, out=np.zeros_like(loss), where=low > 0)
    w = np.exp(-SHARPNESS * excess)
    return w[1] / (w[0] + w[1])


def realised_count(positions: np.ndarray, n_scores: np.ndarray, horizon: int,
                   window: int) -> np.ndarray:
    """How many realised scores each step's tracking read at each position [P, h]
    (``n_scores`` [N, h]: 1 where a score exists)."""
    out = np.zeros((len(positions), horizon), dtype=np.int64)
    csum = np.vstack([np.zeros((1, horizon)), np.cumsum(n_scores, axis=0)])
    for k in range(horizon):
        hi = np.clip(positions - k, 0, len(n_scores))  # scores at positions <= p - k - 1
        lo = np.clip(positions - k - window, 0, len(n_scores))
        out[:, k] = csum[hi, k] - csum[lo, k]
    return out


@dataclass
class Adapted:
    """Forecasts with tracked quantiles, and what the tracking did at each origin: the static
    and tracked quantiles [W, h, Q] and how many realised past forecasts it read [W, h]."""

    forecast: Forecast
    static_z: np.ndarray
    tracked_z: np.ndarray
    realised: np.ndarray

    def width_ratio(self, coverage: float) -> np.ndarray:
        """Tracked / static width of the central ``coverage`` band, per origin and step [W, h]."""
        lo, hi = central_interval(self.tracked_z, self.forecast.levels, coverage)
        static_lo, static_hi = central_interval(self.static_z, self.forecast.levels, coverage)
        return (hi - lo) / (static_hi - static_lo)


def adapted_forecast(forecaster, frame: pd.DataFrame, origins: np.ndarray,
                     tracking: Tracking) -> Adapted:
    """Forecasts at ``origins`` (rows of ``frame``, ascending) whose quantiles are tracked over
    each origin's own realised past (see the module docstring), whichever kind ``forecaster``
    is (LSTM or volatility model). Rows after an origin change nothing of its forecast."""
    origins = np.asarray(origins, dtype=np.int64)
    h, levels = forecaster.horizon, forecaster.levels
    z0 = np.asarray(forecaster.calibration, np.float64)
    if len(origins) == 0 or not tracking.enabled:
        loc, scale, log_space = forecaster.location_scale(frame, origins)
        static = np.broadcast_to(z0, (len(origins), *z0.shape))
        return Adapted(forecast_from(loc, scale, z0, frame, origins, log_space, levels),
                       static, static, np.zeros((len(origins), h), dtype=np.int64))
    first = max(forecaster.min_rows - 1, int(origins.min()) - tracking.window - h)
    span = np.arange(first, int(origins.max()) + 1)  # every origin the tracking may replay
    loc, scale, log_space = forecaster.location_scale(frame, span)
    close = frame["Close"].to_numpy(np.float64)
    ahead = span[:, None] + np.arange(1, h + 1)[None, :]  # [N, h]: the row each step lands on
    known = ahead < len(close)
    future = np.where(known, close[np.minimum(ahead, len(close) - 1)], np.nan)
    realised = np.log(future / close[span][:, None]) if log_space else future
    scores = (realised - loc) / scale  # standardised residuals [N, h]; NaN: not realised
    positions = origins - first
    unit = close[span][:, None] * np.exp(loc) * scale if log_space else scale
    tracked = track_quantiles(z0, scores, positions, levels, tracking, unit)
    count = realised_count(positions, np.isfinite(scores).astype(np.int64), h, tracking.window)
    forecast = forecast_from(loc[positions], scale[positions], tracked, frame, origins,
                             log_space, levels)
    return Adapted(forecast, np.broadcast_to(z0, tracked.shape), tracked, count)
