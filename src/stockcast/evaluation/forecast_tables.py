"""The out-of-sample forecast table: one row per (target date, step), what promotion compares
across versions and folds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.modeling.forecaster import Forecast


def forecast_table(dates: pd.Series, origins: np.ndarray, forecast: Forecast,
                   actual: np.ndarray) -> pd.DataFrame:
    """The out-of-sample forecasts as rows (date = target date, step, origin_date, point,
    q0.025 ... q0.975, actual): what promotion compares across versions."""
    dates = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    w, h = actual.shape
    steps = np.tile(np.arange(1, h + 1), w)
    origin_rows = np.repeat(origins, h)
    table = pd.DataFrame({
        "date": dates.iloc[origin_rows + steps].to_numpy(),
        "step": steps,
        "origin_date": dates.iloc[origin_rows].to_numpy(),
        "point": forecast.point.ravel(),
    })
    for j, level in enumerate(forecast.levels):
        table[f"q{level:g}"] = forecast.quantiles[:, :, j].ravel()
    table["actual"] = actual.ravel()
    return table
