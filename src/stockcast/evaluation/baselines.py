"""The baselines a sceptic asks for, scored on exactly the model's (origin, step) targets:
persistence, a constant drift, and the EWMA-volatility band."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.modeling.intervals import QUANTILES
from stockcast.modeling.volatility_forecasters import EwmaForecaster


def naive_forecast(last_close: np.ndarray, horizon: int) -> np.ndarray:
    """Persistence: every future step equals the last observed close. [W] -> [W, horizon]."""
    return np.repeat(np.asarray(last_close, dtype=np.float64)[:, None], horizon, axis=1)


def training_drift(close: np.ndarray, train_end: int) -> float:
    """Mean daily log return over the training rows ``[0, train_end)``."""
    close = np.asarray(close, dtype=np.float64)[:train_end]
    return float(np.mean(np.diff(np.log(close)))) if len(close) > 1 else 0.0


def drift_forecast(last_close: np.ndarray, horizon: int, drift: float) -> np.ndarray:
    """A constant drift: last close x exp(k x drift) at step k. [W] -> [W, horizon]."""
    steps = np.arange(1, horizon + 1)[None, :]
    return np.asarray(last_close, dtype=np.float64)[:, None] * np.exp(drift * steps)


def ewma_band(frame: pd.DataFrame, origins: np.ndarray, horizon: int,
              levels: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """The EWMA-volatility band [W, h, Q], uncalibrated: Gaussian quantiles of a zero-drift
    random walk around persistence, sigma_t * sqrt(k) at step k (the EWMA forecaster before
    its calibration)."""
    return EwmaForecaster(horizon, levels=levels).forecast_at(frame, origins).quantiles
