"""Honest evaluation in price units, always beside the naive persistence forecast."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    r2_score,
    root_mean_squared_error,
)

from stockcast.evaluation.baselines import naive_forecast


def price_metrics(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE (%) over every (origin, step) pair, in price units."""
    pred = np.asarray(pred, dtype=np.float64).ravel()
    actual = np.asarray(actual, dtype=np.float64).ravel()
    constant = np.ptp(actual) == 0 if len(actual) else True
    return {
        "rmse": float(root_mean_squared_error(actual, pred)),
        "mae": float(mean_absolute_error(actual, pred)),
        "r2": float("nan") if constant else float(r2_score(actual, pred)),
        "mape": float(mean_absolute_percentage_error(actual, pred) * 100.0),
    }


def score_forecasts(pred: np.ndarray, actual: np.ndarray, last_close: np.ndarray) -> dict[str, float]:
    """``test_*`` and ``naive_*`` metrics on the same targets, ``skill_rmse`` and per-step RMSE."""
    pred, actual = np.asarray(pred), np.asarray(actual)
    naive = naive_forecast(last_close, actual.shape[1])
    model = price_metrics(pred, actual)
    base = price_metrics(naive, actual)
    out = {f"test_{k}": v for k, v in model.items()}
    out |= {f"naive_{k}": v for k, v in base.items()}
    out["skill_rmse"] = 1.0 - model["rmse"] / base["rmse"] if base["rmse"] > 0 else float("nan")
    if actual.shape[1] > 1:
        for step in range(actual.shape[1]):
            out[f"test_rmse_step_{step + 1}"] = price_metrics(pred[:, step], actual[:, step])["rmse"]
    return out
