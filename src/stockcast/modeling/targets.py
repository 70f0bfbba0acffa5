"""What the model reads and predicts, and how that maps back to prices: one class per target
formulation (``ModelConfig.target``), chosen once by ``make_target``. Each is fitted on
training rows only and travels with the model (pickled into the MLflow model).

- ``log_return`` (default): per-row log returns relative to the previous close in, the next
  log returns out; prices are rebuilt from the last observed close. Scale-free, so a history
  that rises a hundredfold or leaves the training range does not break it.
- ``residual``: log prices relative to the window's last close in, log(future / last close)
  out; a zero prediction is exactly the persistence forecast.
- ``price`` (the seed tutorials'): scaled prices in, the scaled next closes out.

The contract (darts' fit / transform / inverse_transform, plus what the Gaussian head needs):
``row_features`` (unscaled per-row inputs), ``fit`` (training rows only), ``scale_rows`` and
``make_relative`` (model units), ``to_prices`` (back to prices), ``base_scale`` (the scale the
head starts from) and ``distribution`` (the head's output as a distribution of the
cumulative log return, or of the price itself where ``log_space`` is False).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from stockcast.modeling.volatility import log_range_variance

PRICE_LIKE = ("Open", "High", "Low", "Close")
RELATIVE_VOLUME_DAYS = 20
# The raw columns each derived feature is computed from (a raw column reads itself).
FEATURE_COLUMNS = {
    "LogReturn": ("Close",),
    "RangeVar": ("Open", "High", "Low", "Close"),
    "Gap": ("Open", "Close"),
    "Body": ("Open", "Close"),
    "RelVolume": ("Volume",),
}


def range_features(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A derived per-row feature that reads rows <= t only, identical in every formulation:
    ``RangeVar`` the log of the day's range-based variance (gap + Garman-Klass, floored at
    1e-8, i.e. a 1 bp move), ``Gap`` the overnight log return ln(O_t / C_{t-1}), ``Body`` the
    open-to-close log return ln(C_t / O_t), ``RelVolume`` log volume minus its mean over the
    previous 20 sessions. Undefined values (row 0) are NaN."""
    close = frame["Close"].to_numpy(dtype=np.float64)
    if name == "RangeVar":
        return log_range_variance(frame)
    if name == "Gap":
        return np.log(frame["Open"].to_numpy(dtype=np.float64) / np.r_[np.nan, close[:-1]])
    if name == "Body":
        return np.log(close / frame["Open"].to_numpy(dtype=np.float64))
    log_volume = pd.Series(np.log1p(frame["Volume"].to_numpy(dtype=np.float64)))
    previous = log_volume.shift(1).rolling(RELATIVE_VOLUME_DAYS, min_periods=1).mean()
    return (log_volume - previous).to_numpy()


class Target:
    """One target formulation; subclasses say how prices become model units and back."""

    name: ClassVar[str]
    log_space: ClassVar[bool] = True  # the distribution is of cumulative log returns
    zero_init_head: ClassVar[bool] = True  # a zero output is the persistence forecast
    default_scaler: ClassVar[str] = "standard"

    def __init__(self, features: tuple[str, ...] = ("Close",), scaler_kind: str = "auto"):
        self.features = tuple(features)
        self.scaler_kind = scaler_kind
        self.scaler: TransformerMixin | None = None

    @property
    def close_index(self) -> int:
        """Column of Close in the feature matrix."""
        return self.features.index("Close")

    # ------------------------------------------------------------------ rows -> model units
    def row_features(self, frame: pd.DataFrame) -> np.ndarray:
        """Unscaled per-row features [N, F]; row 0 of return features is undefined (NaN)."""
        close = frame["Close"].to_numpy(dtype=np.float64)
        prev_close = np.r_[np.nan, close[:-1]]
        cols = []
        for name in self.features:
            if name == "LogReturn":  # the day's close-to-close log return, in any formulation
                cols.append(np.log(close / prev_close))
            elif name in FEATURE_COLUMNS:
                cols.append(range_features(frame, name))
            elif name == "Volume":
                cols.append(self._volume(np.log1p(frame[name].to_numpy(dtype=np.float64))))
            else:
                cols.append(self._price(frame[name].to_numpy(dtype=np.float64), prev_close))
        return np.stack(cols, axis=1)

    def _volume(self, log_volume: np.ndarray) -> np.ndarray:
        return log_volume - np.r_[np.nan, log_volume[:-1]]  # the change in log volume

    def _price(self, values: np.ndarray, prev_close: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _make_scaler(self) -> TransformerMixin:
        kind = self.default_scaler if self.scaler_kind == "auto" else self.scaler_kind
        if kind == "minmax":
            return MinMaxScaler()
        # Return targets are scaled, not centred: a zero output is then a zero return, so the
        # zero-initialised head starts at persistence, not at the training span's mean drift.
        return StandardScaler(with_mean=not self.zero_init_head)

    def fit(self, rows: np.ndarray) -> Target:
        """Fit the scaler on training rows [N, F] only (no look-ahead)."""
        self.scaler = self._make_scaler().fit(rows)
        return self

    def scale_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-row model inputs [N, F] and per-row target values [N]."""
        inputs = self.scaler.transform(np.nan_to_num(rows, nan=0.0))
        return inputs, inputs[:, self.close_index]

    def make_relative(self, x: np.ndarray, y: np.ndarray,
                      origin_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows x [W, L, F] and y [W, out] made relative to each origin (if the
        formulation is); ``origin_targets`` [W] are the per-row targets at the origins."""
        return x, y

    # ------------------------------------------------------------------ model units -> prices
    @property
    def close_scale(self) -> float:
        """Unscaled units of the Close feature per scaled unit."""
        if isinstance(self.scaler, MinMaxScaler):
            return float(1.0 / self.scaler.scale_[self.close_index])
        return float(self.scaler.scale_[self.close_index])

    def unscale_close(self, values: np.ndarray) -> np.ndarray:
        """Scaled Close-feature values back to their units (a price or a log return)."""
        ci = self.close_index
        if isinstance(self.scaler, MinMaxScaler):
            return (values - self.scaler.min_[ci]) / self.scaler.scale_[ci]
        mean = self.scaler.mean_[ci] if getattr(self.scaler, "with_mean", True) else 0.0
        return values * self.scaler.scale_[ci] + mean

    def to_prices(self, y_scaled: np.ndarray, last_close: np.ndarray) -> np.ndarray:
        """Scaled outputs [W, k] -> closes [W, k], given each window's last close [W]."""
        raise NotImplementedError

    def base_scale(self, sigma: np.ndarray, close: np.ndarray, horizon: int) -> np.ndarray:
        """The daily log-return volatility at each origin, sigma [W, 1] (the same every step)
        or [W, h] (each step's own), in model output units [W, h] (``close`` [W]: the close
        at each origin)."""
        raise NotImplementedError

    def distribution(self, loc: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Model location and scale [W, h] -> location and scale of the cumulative log return
        at each step (of the price itself where ``log_space`` is False)."""
        raise NotImplementedError

    def realised(self, prices: np.ndarray, last_close: np.ndarray) -> np.ndarray:
        """Realised prices [W, h] in the space ``distribution`` describes."""
        prices = np.asarray(prices, np.float64)
        if not self.log_space:
            return prices
        return np.log(prices / np.asarray(last_close, np.float64)[:, None])


def _cumulative(sigma: np.ndarray, horizon: int) -> np.ndarray:
    """Per-step daily sds [W, 1] (constant) or [W, h] -> the cumulative return's sd [W, h]."""
    if sigma.shape[1] == 1:
        return sigma * np.sqrt(np.arange(1, horizon + 1))[None, :]  # a random walk
    return np.sqrt(np.cumsum(sigma**2, axis=1))


class LogReturnTarget(Target):
    """Log returns in, the next log returns out (standardised, not centred)."""

    name = "log_return"

    def _price(self, values, prev_close):
        return np.log(values / prev_close)

    def to_prices(self, y_scaled, last_close):
        returns = self.unscale_close(np.asarray(y_scaled, np.float64))
        return np.asarray(last_close, np.float64)[:, None] * np.exp(np.cumsum(returns, axis=1))

    def base_scale(self, sigma, close, horizon):
        return np.broadcast_to(sigma, (len(sigma), horizon)) / self.close_scale  # per step

    def distribution(self, loc, scale):
        step_sd = scale * self.close_scale
        return np.cumsum(self.unscale_close(loc), axis=1), np.sqrt(np.cumsum(step_sd**2, axis=1))


class ResidualTarget(Target):
    """Log prices relative to the window's last close in, log(future / last close) out, all
    price features on one scale: the spread of one-day log moves on the training rows."""

    name = "residual"

    def __init__(self, features=("Close",), scaler_kind="auto"):
        super().__init__(features, scaler_kind)
        self.residual_scale = 1.0

    @property
    def _is_price(self) -> np.ndarray:
        return np.array([f in PRICE_LIKE for f in self.features])

    def _price(self, values, prev_close):
        return np.log(values)  # made window-relative in `make_relative`

    def fit(self, rows):
        self.residual_scale = float(np.std(np.diff(rows[:, self.close_index]))) or 1.0
        self.scaler = self._make_scaler().fit(np.where(self._is_price, 0.0, rows))
        return self

    def scale_rows(self, rows):
        price = self._is_price
        inputs = rows.copy()
        inputs[:, ~price] = self.scaler.transform(np.where(price, 0.0, rows))[:, ~price]
        return inputs, rows[:, self.close_index]  # log closes, made relative per window

    def make_relative(self, x, y, origin_targets):
        price = self._is_price
        x[:, :, price] = (x[:, :, price] - origin_targets[:, None, None]) / self.residual_scale
        return x, (y - origin_targets[:, None]) / self.residual_scale

    def to_prices(self, y_scaled, last_close):
        y = np.asarray(y_scaled, np.float64)
        return np.asarray(last_close, np.float64)[:, None] * np.exp(y * self.residual_scale)

    def base_scale(self, sigma, close, horizon):
        return _cumulative(sigma, horizon) / self.residual_scale

    def distribution(self, loc, scale):
        return loc * self.residual_scale, scale * self.residual_scale


class PriceTarget(Target):
    """Scaled prices in, the scaled next closes out (min-max by default)."""

    name = "price"
    log_space = False
    zero_init_head = False
    default_scaler = "minmax"

    def _volume(self, log_volume):
        return log_volume

    def _price(self, values, prev_close):
        return values

    def to_prices(self, y_scaled, last_close):
        return self.unscale_close(np.asarray(y_scaled, np.float64))

    def base_scale(self, sigma, close, horizon):
        return close[:, None] * _cumulative(sigma, horizon) / self.close_scale

    def distribution(self, loc, scale):
        return self.unscale_close(loc), scale * self.close_scale


TARGETS: dict[str, type[Target]] = {t.name: t for t in (LogReturnTarget, ResidualTarget,
                                                         PriceTarget)}


def make_target(name: str, features: tuple[str, ...] = ("Close",),
                scaler_kind: str = "auto") -> Target:
    """The (unfitted) target formulation ``name`` for these input features."""
    return TARGETS[name](tuple(features), scaler_kind)
