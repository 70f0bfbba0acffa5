"""The daily volatility a model's scale starts from (``model.volatility``), one class per
choice: the head predicts a multiple of it, so its intervals move with the volatility
clusters from the first epoch. Each reads only rows up to the origin.

- ``close``: the close-to-close EWMA (every model pickled before the range inputs used it);
- ``range``: the EWMA of the range-based (gap + Garman-Klass) daily variance;
- ``har``: HAR regressions of the log range variance, one per step, fit on training rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from stockcast.modeling.volatility import ewma_volatility, fit_har, har_step_sd, range_volatility

OHLC = ("Open", "High", "Low", "Close")


@dataclass
class BaseScale:
    """A causal daily volatility, fitted on training rows when it has parameters."""

    name: ClassVar[str]  # its ``model.volatility`` value
    columns: ClassVar[tuple[str, ...]] = OHLC  # the raw price columns it reads

    def fit(self, frame: pd.DataFrame, train_end: int, horizon: int) -> BaseScale:
        """Fit on the rows ``[0, train_end)`` only (the EWMAs have nothing to fit)."""
        return self

    def daily_sd(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        """The daily log-return sd at each origin: [W, 1], or [W, h] when it differs by step."""
        raise NotImplementedError


@dataclass
class CloseEwmaScale(BaseScale):
    name = "close"
    columns = ("Close",)

    def daily_sd(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return ewma_volatility(frame["Close"].to_numpy(dtype=np.float64))[origins][:, None]


@dataclass
class RangeEwmaScale(BaseScale):
    name = "range"

    def daily_sd(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return range_volatility(frame)[origins][:, None]


@dataclass
class HarScale(BaseScale):
    name = "har"
    coefs: np.ndarray | None = None  # the HAR regressions, fit on training rows

    def fit(self, frame: pd.DataFrame, train_end: int, horizon: int) -> BaseScale:
        self.coefs = fit_har(frame, train_end, horizon)
        return self

    def daily_sd(self, frame: pd.DataFrame, origins: np.ndarray) -> np.ndarray:
        return har_step_sd(frame, origins, self.coefs)


BASE_SCALES: dict[str, type[BaseScale]] = {
    c.name: c for c in (CloseEwmaScale, RangeEwmaScale, HarScale)}


def base_scale_named(name: str, coefs: np.ndarray | None = None) -> BaseScale:
    """The base scale ``model.volatility`` names (with fitted HAR coefficients, if given)."""
    return HarScale(coefs) if name == "har" else BASE_SCALES[name]()
