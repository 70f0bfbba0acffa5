"""From a validated price frame to scaled (past -> future) windows per split, and back to prices.

Row ``t`` is a window's *origin*: its inputs are rows ``t-L+1 .. t`` and its targets rows
``t+1 .. t+h``. A window belongs to the split that holds all of its targets; its inputs may
reach back into the previous split (that is the past, known at forecast time), never forward.
Row 0 is never an input, so return-based features (which need the previous close) and
price features produce exactly the same windows, and formulations compare on the same days.

Target formulations (``ModelConfig.target``), implemented by ``SeriesTransformer``, which is
fitted on training rows only and travels with the model (pickled into the MLflow model):

- ``log_return`` (default): per-row log returns relative to the previous close in, the next
  log returns out; prices are rebuilt from the last observed close. Scale-free, so a history
  that rises a hundredfold or leaves the training range does not break it.
- ``residual``: log prices relative to the window's last close in, log(future / last close)
  out; a zero prediction is exactly the persistence forecast.
- ``price`` (the seed tutorials'): scaled prices in, the scaled next closes out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from stockcast.config import ModelConfig, WindowConfig
from stockcast.modeling.intervals import base_scale
from stockcast.splits import SplitBounds, split_bounds, window_origins

PRICE_LIKE = ("Open", "High", "Low", "Close")


def make_windows(
    inputs: np.ndarray,
    targets: np.ndarray,
    origins: np.ndarray,
    sequence_length: int,
    horizon: int,
    include_input: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Gather windows without a Python loop over rows.

    inputs: [N, F] per-row features; targets: [N] per-row target values.
    Returns X [W, L, F] and y [W, h] (or [W, L + h] with ``include_input``, the seed
    tutorials' option: the target is the input sequence followed by the future steps).
    """
    origins = np.asarray(origins, dtype=np.int64)
    # sliding_window_view gives views: [N - L + 1, F, L]; row i covers rows i .. i+L-1.
    x_all = sliding_window_view(inputs, sequence_length, axis=0)
    x = np.ascontiguousarray(x_all[origins - sequence_length + 1].transpose(0, 2, 1))
    if include_input:
        span = sequence_length + horizon
        y_all = sliding_window_view(targets, span)
        y = y_all[origins - sequence_length + 1]
    else:
        y_all = sliding_window_view(targets, horizon)
        y = y_all[origins + 1]
    return x, np.ascontiguousarray(y)


# ---------------------------------------------------------------------------- target transform


def _make_scaler(kind: str, target: str) -> TransformerMixin:
    if kind == "auto":
        kind = "minmax" if target == "price" else "standard"
    if kind == "minmax":
        return MinMaxScaler()
    # Return targets are scaled, not centred: a zero output is then a zero return, so the
    # zero-initialised head starts at persistence, not at the training span's mean drift.
    return StandardScaler(with_mean=target == "price")


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
    @property
    def close_scale(self) -> float:
        """Unscaled units of the Close feature per scaled unit."""
        if isinstance(self.scaler, MinMaxScaler):
            return float(1.0 / self.scaler.scale_[self.close_index])
        return float(self.scaler.scale_[self.close_index])

    def unscale_close(self, values: np.ndarray) -> np.ndarray:
        """Scaled Close-feature values back to their units (a price or a log return)."""
        if isinstance(self.scaler, MinMaxScaler):
            lo, scale = self.scaler.min_[self.close_index], self.scaler.scale_[self.close_index]
            return (values - lo) / scale
        mean = self.scaler.mean_[self.close_index] if getattr(self.scaler, "with_mean", True) else 0.0
        return values * self.scaler.scale_[self.close_index] + mean

    def to_prices(self, y_scaled: np.ndarray, last_close: np.ndarray) -> np.ndarray:
        """Scaled model outputs [W, k] -> closes [W, k], given each window's last close [W]."""
        y_scaled = np.asarray(y_scaled, dtype=np.float64)
        last_close = np.asarray(last_close, dtype=np.float64)[:, None]
        if self.target == "price":
            return self.unscale_close(y_scaled)
        if self.target == "log_return":
            returns = self.unscale_close(y_scaled)
            return last_close * np.exp(np.cumsum(returns, axis=1))
        return last_close * np.exp(y_scaled * self.residual_scale)

    def future_part(self, y: np.ndarray) -> np.ndarray:
        """Only the forecast steps of a target/prediction (drops the echoed inputs)."""
        return y[:, -self.horizon:]


# ---------------------------------------------------------------------------- prepared data


@dataclass(frozen=True)
class Split:
    """One split's scaled windows: inputs x [W, L, F], targets y [W, out], origin rows [W],
    and the EWMA scale each output's predictive scale starts from, base [W, out]."""

    x: np.ndarray
    y: np.ndarray
    origins: np.ndarray
    base: np.ndarray

    def __len__(self) -> int:
        return len(self.origins)


@dataclass(frozen=True)
class PreparedData:
    """Scaled windows per split, the fitted transformer, and the frame they came from."""

    frame: pd.DataFrame
    bounds: SplitBounds
    transformer: SeriesTransformer
    train: Split
    val: Split
    test: Split

    @property
    def close(self) -> np.ndarray:
        """Closes of the whole frame [N]."""
        return self.frame["Close"].to_numpy(dtype=np.float64)

    def actual_prices(self, split: Split) -> np.ndarray:
        """True closes [W, horizon] after each origin of ``split``."""
        h = self.transformer.horizon
        return np.stack([self.close[split.origins + k] for k in range(1, h + 1)], axis=1)

    def last_close(self, split: Split) -> np.ndarray:
        """The last observed close at each origin of ``split`` [W]."""
        return self.close[split.origins]

    def to_prices(self, split: Split, y_scaled: np.ndarray) -> np.ndarray:
        """Scaled predictions for ``split`` -> forecast closes [W, horizon]."""
        future = self.transformer.future_part(np.asarray(y_scaled))
        return self.transformer.to_prices(future, self.last_close(split))


def prepare_windows(frame: pd.DataFrame, window: WindowConfig, model: ModelConfig) -> PreparedData:
    """Split chronologically, fit the scaler on training rows only, build every split's windows."""
    frame = frame.reset_index(drop=True)
    bounds = split_bounds(len(frame), window)
    origins = window_origins(len(frame), window)
    transformer = SeriesTransformer(
        target=model.target,
        features=tuple(window.features),
        scaler_kind=window.scaler,
        sequence_length=window.sequence_length,
        horizon=window.horizon,
        include_input=window.include_input,
    ).fit(frame, bounds.train_end)
    windows = transformer.split_windows(frame, origins)
    splits = {name: Split(x, y, origins[name], base_scale(transformer, frame, origins[name]))
              for name, (x, y) in windows.items()}
    return PreparedData(frame, bounds, transformer, **splits)
