"""The MLflow pyfunc model: raw prices in, forecast closes out (scaler inside)."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
import torch

from stockcast.market_calendar import next_trading_days
from stockcast.modeling.model import LSTMForecaster
from stockcast.modeling.windows import SeriesTransformer


class StockcastForecaster(mlflow.pyfunc.PythonModel):
    """Wraps the LSTM and its fitted SeriesTransformer so consumers only pass prices.

    ``predict(df)`` takes a frame of recent daily prices, oldest first (at least
    ``sequence_length + 1`` rows of the columns the model was trained on, ``Close`` at least;
    a ``Date`` column is optional) and returns the next ``horizon`` closes in price units.
    """

    def __init__(self, model: LSTMForecaster, transformer: SeriesTransformer, ticker: str) -> None:
        self.model = model.cpu().eval()
        self.transformer = transformer
        self.ticker = ticker

    @property
    def min_rows(self) -> int:
        """Rows of prices ``predict`` needs: a window plus the close before it."""
        return self.transformer.sequence_length + 1

    def forecast_at(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """Forecast closes [W, horizon] made at each origin row of ``frame`` (batch backtest)."""
        origins = np.asarray(origins, dtype=np.int64)
        if len(origins) == 0:
            return np.empty((0, self.transformer.horizon))
        x, _ = self.transformer.windows(frame, origins)
        with torch.inference_mode():
            out = self.model(torch.as_tensor(x)).numpy()
        close = frame["Close"].to_numpy(dtype=np.float64)
        return self.transformer.to_prices(self.transformer.future_part(out), close[origins])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None):
        """Forecast the ``horizon`` closes after the last row of ``model_input``."""
        frame = pd.DataFrame(model_input).reset_index(drop=True)
        needed = self.transformer.input_columns
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"input lacks column(s) {missing}; the model needs {needed}")
        if len(frame) < self.min_rows:
            raise ValueError(f"need at least {self.min_rows} rows of prices, got {len(frame)}")
        # Targets beyond the frame are never read: pad with the last row so windows() can slice.
        pad = pd.concat([frame] + [frame.iloc[[-1]]] * self.transformer.horizon,
                        ignore_index=True)
        forecast = self.forecast_at(pad, np.array([len(frame) - 1]))[0]
        out = pd.DataFrame({"step": np.arange(1, len(forecast) + 1), "forecast": forecast})
        if "Date" in frame.columns:
            last = pd.to_datetime(frame["Date"].iloc[-1])
            out.insert(0, "date", next_trading_days(last, len(out)))
        return out
