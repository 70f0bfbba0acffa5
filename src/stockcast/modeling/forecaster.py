"""A trained model with its transform and its calibration: windows or raw prices in, point and
quantile forecasts in price units out. The evaluation, the backtest and the served MLflow model
all forecast through this one object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from stockcast.modeling.intervals import (
    QUANTILES,
    base_scale,
    calibrated_z,
    central_interval,
    quantile_prices,
    target_distribution,
)
from stockcast.modeling.model import LSTMForecaster
from stockcast.modeling.trainer import predict
from stockcast.modeling.windows import PreparedData, SeriesTransformer, Split


@dataclass
class Forecast:
    """Forecasts at W origins: the point forecast [W, h] and quantiles [W, h, Q] in price units."""

    point: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]

    def interval(self, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds [W, h] of the central interval with ``coverage`` (0.8, 0.95)."""
        return central_interval(self.quantiles, self.levels, coverage)


class ServedForecaster(Protocol):
    """What every servable forecaster is, the LSTM's ``Forecaster`` and each volatility model
    alike: raw price rows in, a calibrated predictive distribution out. What serves, scores,
    adapts or registers a forecaster reads only this, whichever kind it is."""

    levels: tuple[float, ...]

    @property
    def input_columns(self) -> list[str]: ...

    @property
    def horizon(self) -> int: ...

    @property
    def calibration(self) -> np.ndarray: ...

    @property
    def min_rows(self) -> int: ...

    @property
    def network(self) -> Forecaster | None:
        """The LSTM forecaster this is (itself), or None for a model without a network."""

    def forecast_at(self, frame: pd.DataFrame, origins: np.ndarray) -> Forecast: ...

    def location_scale(self, frame: pd.DataFrame, origins: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, bool]: ...


@dataclass
class Forecaster:
    """The LSTM, its fitted transformer and the conformal quantiles z [h, Q] of its
    standardised residuals on the validation span.

    The point forecast is the location of the predictive distribution: for the return targets
    last close x exp(predicted cumulative log return), i.e. its median before calibration.
    """

    model: LSTMForecaster
    transformer: SeriesTransformer
    z: np.ndarray
    levels: tuple[float, ...] = QUANTILES

    @property
    def input_columns(self) -> list[str]:
        """The raw price columns the forecaster reads."""
        return self.transformer.input_columns

    @property
    def horizon(self) -> int:
        """Future steps per forecast."""
        return self.transformer.horizon

    @property
    def calibration(self) -> np.ndarray:
        """The split-conformal quantiles z [h, Q] found on the validation span."""
        return self.z

    @property
    def min_rows(self) -> int:
        """Rows of prices a forecast needs: a window plus the close before it."""
        return self.transformer.sequence_length + 1

    @property
    def network(self) -> Forecaster:
        """The LSTM forecaster: this one."""
        return self

    def distribution(self, split: Split, last_close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The location and scale [W, h] of the cumulative log return (of the price for the
        ``price`` target) at each window, before calibration."""
        loc, scale, _ = _distribution(self.model, self.transformer, split, last_close)
        return loc, scale

    def forecast_split(self, split: Split, last_close: np.ndarray) -> Forecast:
        """Forecasts for a split's windows, given each window's last close [W]."""
        loc, scale, log_space = _distribution(self.model, self.transformer, split, last_close)
        point = last_close[:, None] * np.exp(loc) if log_space else loc
        return Forecast(point, quantile_prices(loc, scale, self.z, last_close, log_space),
                        self.levels)

    def forecast_at(self, frame: pd.DataFrame, origins: np.ndarray) -> Forecast:
        """Forecasts made at each origin row of a price frame (only rows <= origin are read)."""
        origins = np.asarray(origins, dtype=np.int64)
        if len(origins) == 0:
            empty = np.empty((0, self.horizon))
            return Forecast(empty, np.empty((0, self.horizon, len(self.levels))), self.levels)
        loc, scale, log_space = self.location_scale(frame, origins)
        return forecast_from(loc, scale, self.z, frame, origins, log_space, self.levels)

    def location_scale(self, frame: pd.DataFrame, origins: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, bool]:
        """The location and scale [W, h] of the cumulative log return (of the price for the
        ``price`` target) at each origin row, before calibration (rows <= origin only)."""
        origins = np.asarray(origins, dtype=np.int64)
        t = self.transformer
        # Targets beyond the frame are never read: pad with the last row so windows can slice.
        pad = pd.concat([frame] + [frame.iloc[[-1]]] * t.horizon, ignore_index=True)
        x, y = t.windows(pad, origins)
        close = frame["Close"].to_numpy(dtype=np.float64)
        split = Split(x, y, origins, base_scale(t, pad, origins))
        return _distribution(self.model, t, split, close[origins])


def forecast_from(loc: np.ndarray, scale: np.ndarray, z: np.ndarray, frame: pd.DataFrame,
                  origins: np.ndarray, log_space: bool, levels: tuple[float, ...]) -> Forecast:
    """A Forecast from a location and scale [W, h] and calibration quantiles z ([h, Q], or one
    set per origin [W, h, Q]); the point is the location (persistence for a zero location)."""
    close = frame["Close"].to_numpy(dtype=np.float64)[np.asarray(origins, dtype=np.int64)]
    point = close[:, None] * np.exp(loc) if log_space else loc
    return Forecast(point, quantile_prices(loc, scale, z, close, log_space), levels)


def _distribution(model: LSTMForecaster, transformer: SeriesTransformer, split: Split,
                  last_close: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """The model's location and scale of the future steps in target space (see intervals)."""
    loc, scale = predict(model, split)
    future = transformer.future_part
    return target_distribution(transformer, future(loc), future(scale))


def calibrate(model: LSTMForecaster, data: PreparedData) -> Forecaster:
    """Split-conformal calibration on the validation span: the empirical quantiles of the
    standardised residuals there become the forecaster's z (``calibrated_z``)."""
    last = data.last_close(data.val)
    loc, scale, log_space = _distribution(model, data.transformer, data.val, last)
    realised = data.transformer.target.realised(data.actual_prices(data.val), last)
    return Forecaster(model, data.transformer, calibrated_z((realised - loc) / scale))
