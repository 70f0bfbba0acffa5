"""Target formulations: turning a price frame into scaled model inputs and back to prices.

A fitted ``SeriesTransformer`` travels with the model (it is pickled into the MLflow model),
so a forecast from raw prices uses exactly the transformation the model was trained with.

Formulations (``ModelConfig.target``):

- ``price`` (the seed tutorials'): scaled prices in, the scaled next closes out.
- ``log_return``: per-row log returns relative to the previous close in, the next log
  returns out; prices are rebuilt from the last observed close. Scale-free, so a history
  that rises a hundredfold or leaves the training range does not break it.
- ``residual``: log prices relative to the window's last close in, log(future / last close)
  out; a zero prediction is exactly the persistence forecast.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from stockcast.windows import make_windows

PRICE_LIKE = ("Open", "High", "Low", "Close")


def _make_scaler(kind: str, target: str) -> TransformerMixin:
    if kind == "auto":
        kind = "minmax" if target == "price" else "standard"
    return MinMaxScaler() if kind == "minmax" else StandardScaler()


@dataclass
class SeriesTransformer:
    """Fit on training rows only; map price frames to windows and predictions back to prices."""

    target: str = "log_return"
    features: tuple[str, ...] = ("Close",)
    scaler_kind: str = "auto"
    sequence_length: int = 60
    horizon: int = 1
    include_input: bool = False
    scaler: TransformerMixin | None = field(default=None, repr=False)
    residual_scale: float = 1.0

    @property
    def input_columns(self) -> list[str]:
        """The raw price columns a frame must have for these features."""
        return [f for f in self.features if f != "LogReturn"] + (
            ["Close"] if "Close" not in self.features else [])

    @property
    def close_index(self) -> int:
        """Column of Close in the feature matrix."""
        return self.features.index("Close")

    # ------------------------------------------------------------------ per-row features
    def _row_features(self, frame: pd.DataFrame) -> np.ndarray:
        """Unscaled per-row features [N, F]; row 0 of return features is undefined (NaN)."""
        cols = []
        close = frame["Close"].to_numpy(dtype=np.float64)
        prev_close = np.r_[np.nan, close[:-1]]
        for name in self.features:
            if name == "LogReturn":  # the day's close-to-close log return, in any formulation
                cols.append(np.log(close / prev_close))
                continue
            values = frame[name].to_numpy(dtype=np.float64)
            if name == "Volume":
                logv = np.log1p(values)
                cols.append(logv if self.target == "price" else logv - np.r_[np.nan, logv[:-1]])
            elif self.target == "log_return":
                cols.append(np.log(values / prev_close))
            elif self.target == "residual":
                cols.append(np.log(values))  # made window-relative in `windows`
            else:
                cols.append(values)
        return np.stack(cols, axis=1)

    def fit(self, frame: pd.DataFrame, train_end: int) -> SeriesTransformer:
        """Fit the scaler on training rows ``[0, train_end)`` only (no look-ahead)."""
        rows = self._row_features(frame.iloc[:train_end])[1:]  # row 0 has no previous close
        self.scaler = _make_scaler(self.scaler_kind, self.target)
        if self.target == "residual":
            # One scale for every price feature: the spread of one-day log moves.
            logc = rows[:, self.close_index]
            self.residual_scale = float(np.std(np.diff(logc))) or 1.0
            self.scaler.fit(np.where(self._is_price_col, 0.0, rows))
        else:
            self.scaler.fit(rows)
        return self

    @property
    def _is_price_col(self) -> np.ndarray:
        return np.array([f in PRICE_LIKE for f in self.features])

    # ------------------------------------------------------------------ windows
    def windows(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled windows X [W, L, F] (float32) and scaled targets y [W, h] for ``origins``."""
        return self.split_windows(frame, {"windows": origins})["windows"]

    def split_windows(
        self, frame: pd.DataFrame, origins: dict[str, np.ndarray]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``windows`` for several origin sets (the splits), transforming the frame once."""
        if self.scaler is None:
            raise RuntimeError("SeriesTransformer.fit must be called before windows()")
        rows = self._row_features(frame)
        ci = self.close_index
        if self.target == "residual":
            price_cols = self._is_price_col
            inputs = rows.copy()
            inputs[:, ~price_cols] = self.scaler.transform(np.where(price_cols, 0.0, rows))[
                :, ~price_cols
            ]
            targets = rows[:, ci]  # log closes, made relative to each origin below
        else:
            inputs = self.scaler.transform(np.nan_to_num(rows, nan=0.0))
            targets = inputs[:, ci]
        out = {}
        for name, idx in origins.items():
            x, y = make_windows(inputs, targets, idx, self.sequence_length, self.horizon,
                                self.include_input)
            if self.target == "residual":
                base = targets[idx]  # log close at each origin                 [W]
                x[:, :, price_cols] = (x[:, :, price_cols] - base[:, None, None]) / self.residual_scale
                y = (y - base[:, None]) / self.residual_scale
            out[name] = (x.astype(np.float32), y.astype(np.float32))
        return out

    # ------------------------------------------------------------------ back to prices
    def _unscale_close(self, values: np.ndarray) -> np.ndarray:
        if isinstance(self.scaler, MinMaxScaler):
            lo, scale = self.scaler.min_[self.close_index], self.scaler.scale_[self.close_index]
            return (values - lo) / scale
        mean = self.scaler.mean_[self.close_index]
        return values * self.scaler.scale_[self.close_index] + mean

    def to_prices(self, y_scaled: np.ndarray, last_close: np.ndarray) -> np.ndarray:
        """Scaled model outputs [W, k] -> closes [W, k], given each window's last close [W]."""
        y_scaled = np.asarray(y_scaled, dtype=np.float64)
        last_close = np.asarray(last_close, dtype=np.float64)[:, None]
        if self.target == "price":
            return self._unscale_close(y_scaled)
        if self.target == "log_return":
            returns = self._unscale_close(y_scaled)
            return last_close * np.exp(np.cumsum(returns, axis=1))
        return last_close * np.exp(y_scaled * self.residual_scale)

    def future_part(self, y: np.ndarray) -> np.ndarray:
        """Only the forecast steps of a target/prediction (drops the echoed inputs)."""
        return y[:, -self.horizon:]
