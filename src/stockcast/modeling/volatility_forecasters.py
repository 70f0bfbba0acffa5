"""The volatility models a risk analyst tries first, as forecasters with the LSTM's contract:
persistence as the point forecast, and quantiles of the cumulative log return from the model's
causal volatility at the origin, split-conformal calibrated on the validation span exactly like
the LSTM (``calibrated_z``). They are scored beside the LSTM on every run and served in its
place when it is significantly worse (``registry.tracking``).

- ``ewma``: the close-to-close EWMA (RiskMetrics, lambda 0.94), sd x sqrt(k) at step k;
- ``rangevol``: the same EWMA of the range-based (gap + Garman-Klass) daily variance;
- ``har``: direct HAR regressions of the log range variance, one per step (fit on training rows);
- ``garch``: GARCH(1,1) with Student-t errors (``arch``), fit on training returns, analytic
  multi-step variance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from stockcast.modeling.forecaster import Forecast, forecast_from
from stockcast.modeling.intervals import QUANTILES, calibrated_z, gaussian_z
from stockcast.modeling.volatility import (
    EWMA_WARMUP_RETURNS,
    HAR_LAGS,
    ewma_volatility,
    fit_garch_t,
    fit_har,
    flat_steps,
    garch_scale,
    har_scale,
    range_volatility,
)

# Rows a served baseline wants before the origin: enough for the EWMA to forget its start.
SERVING_ROWS = 250


@dataclass
class VolatilityForecaster:
    """A fitted volatility model and its calibration quantiles z [h, Q] (Gaussian when raw).
    One subclass per model; what names it (its key, the version's ``forecaster`` tag, its
    metrics' prefix in the scorecard, its name in words and in a version's description) are
    class attributes, listed once in ``BASELINES``."""

    horizon: int
    params: np.ndarray = field(default_factory=lambda: np.empty(0))
    z: np.ndarray | None = None
    levels: tuple[float, ...] = QUANTILES

    kind: ClassVar[str]  # the model's key
    tag: ClassVar[str]  # the `forecaster` tag of a version serving it
    prefix: ClassVar[str]  # its metrics' prefix (``<prefix>_interval_score_95``)
    name: ClassVar[str]  # what it is, in words (tags, summaries, reasons)
    short: ClassVar[str]  # in a version's description (``serves HAR``)
    columns: ClassVar[tuple[str, ...]] = ("Open", "High", "Low", "Close")

    def __setstate__(self, state: dict) -> None:
        """Pickles from before the classes kept the model in a ``kind`` field: they load as
        that model's class."""
        kind = state.pop("kind", None)
        if kind is not None:
            self.__class__ = BASELINES[kind]
        self.__dict__.update(state)

    @classmethod
    def fitted(cls, frame: pd.DataFrame, train_end: int, val_origins: np.ndarray,
               horizon: int) -> VolatilityForecaster:
        """The model fit on the training rows and calibrated on the validation origins."""
        return cls(horizon).fit(frame, train_end).calibrate(frame, val_origins)

    @property
    def input_columns(self) -> list[str]:
        """The raw price columns the model reads."""
        return list(self.columns)

    @property
    def network(self) -> None:
        """No network: a volatility model is estimated, not trained."""
        return None

    @property
    def min_rows(self) -> int:
        """Fewest rows a forecast needs (the volatility's warm-up)."""
        return max(EWMA_WARMUP_RETURNS, max(HAR_LAGS)) + 2

    def fit(self, frame: pd.DataFrame, train_end: int) -> VolatilityForecaster:
        """Fit the model's parameters on the training rows ``[0, train_end)`` only (an EWMA
        has none)."""
        return self

    def scale(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """The sd of the cumulative log return at steps 1..h from each origin [W, h]."""
        raise NotImplementedError

    def calibrate(self, frame: pd.DataFrame, origins: np.ndarray) -> VolatilityForecaster:
        """Split-conformal calibration on the validation origins (their targets known)."""
        origins = np.asarray(origins, dtype=np.int64)
        close = frame["Close"].to_numpy(np.float64)
        realised = np.log(np.stack([close[origins + k] for k in range(1, self.horizon + 1)],
                                   axis=1) / close[origins][:, None])
        self.z = calibrated_z(realised / self.scale(frame, origins), self.levels)
        return self

    def forecast_at(self, frame: pd.DataFrame, origins: np.ndarray) -> Forecast:
        """Forecasts made at each origin row (only rows <= origin are read): persistence, and
        quantiles of the cumulative log return from the volatility at the origin."""
        loc, scale, log_space = self.location_scale(frame, origins)
        return forecast_from(loc, scale, self.calibration, frame, origins, log_space, self.levels)

    @property
    def calibration(self) -> np.ndarray:
        """The calibration quantiles z [h, Q] (Gaussian before calibration)."""
        return self.z if self.z is not None else gaussian_z(self.horizon, self.levels)

    def location_scale(self, frame: pd.DataFrame, origins: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Location (zero: persistence) and scale [W, h] of the cumulative log return."""
        scale = self.scale(frame, np.asarray(origins, dtype=np.int64))
        return np.zeros_like(scale), scale, True


class EwmaForecaster(VolatilityForecaster):
    """The close-to-close EWMA (RiskMetrics, lambda 0.94), sd x sqrt(k) at step k."""

    kind, tag, prefix, short = "ewma", "ewma", "ewmacal", "EWMA"
    name = "EWMA(0.94) close-to-close"
    columns = ("Close",)

    def scale(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        daily = ewma_volatility(frame["Close"].to_numpy(np.float64))
        return flat_steps(daily[np.asarray(origins, dtype=np.int64)], self.horizon)


class RangeEwmaForecaster(VolatilityForecaster):
    """The same EWMA of the range-based (gap + Garman-Klass) daily variance."""

    kind, tag, prefix, short = "rangevol", "rangevol", "rangevol", "range EWMA"
    name = "EWMA(0.94) range variance"

    def scale(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return flat_steps(range_volatility(frame)[np.asarray(origins, dtype=np.int64)],
                          self.horizon)


class HarForecaster(VolatilityForecaster):
    """Direct HAR regressions of the log range variance, one per step (training rows)."""

    kind, tag, prefix, short = "har", "har", "har", "HAR"
    name = "HAR range variance"

    def fit(self, frame: pd.DataFrame, train_end: int) -> VolatilityForecaster:
        self.params = fit_har(frame, train_end, self.horizon)
        return self

    def scale(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return har_scale(frame, np.asarray(origins, dtype=np.int64), self.params)


class GarchForecaster(VolatilityForecaster):
    """GARCH(1,1) with Student-t errors (``arch``) on training returns, analytic multi-step
    variance."""

    kind, tag, prefix, short = "garch", "garch_t", "garch", "GARCH-t"
    name = "GARCH(1,1)-t"
    columns = ("Close",)

    def fit(self, frame: pd.DataFrame, train_end: int) -> VolatilityForecaster:
        self.params = fit_garch_t(frame["Close"].to_numpy(np.float64), train_end)
        return self

    def scale(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return garch_scale(frame["Close"].to_numpy(np.float64),
                           np.asarray(origins, dtype=np.int64), self.params, self.horizon)


# Every baseline, by key: each is fit on the training rows and conformal-calibrated on the
# validation span exactly like the LSTM, scored on every run, served when significantly better.
BASELINES: dict[str, type[VolatilityForecaster]] = {
    c.kind: c for c in (EwmaForecaster, RangeEwmaForecaster, HarForecaster, GarchForecaster)}
BY_PREFIX = {c.prefix: c for c in BASELINES.values()}
BY_TAG = {c.tag: c for c in BASELINES.values()}


def refit_baseline(fitted: VolatilityForecaster, frame: pd.DataFrame) -> VolatilityForecaster:
    """The same model refit through the last row for serving; it keeps the calibration
    quantiles found on the validation span (the EWMA has no parameters to refit)."""
    served = type(fitted)(fitted.horizon, z=fitted.z, levels=fitted.levels)
    return served.fit(frame, len(frame))
