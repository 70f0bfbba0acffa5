"""From a validated price frame to scaled (past -> future) windows per split, and back to prices.

Row ``t`` is a window's *origin*: its inputs are rows ``t-L+1 .. t`` and its targets rows
``t+1 .. t+h``. A window belongs to the split that holds all of its targets; its inputs may
reach back into the previous split (that is the past, known at forecast time), never forward.
Row 0 is never an input, so return-based features (which need the previous close) and
price features produce exactly the same windows, and formulations compare on the same days.

What rows become in model units, and how predictions map back to prices, is the target
formulation's (``targets.py``, chosen by ``ModelConfig.target``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.base import TransformerMixin

from stockcast.config import ModelConfig, WindowConfig
from stockcast.modeling.base_scales import BaseScale, CloseEwmaScale, base_scale_named
from stockcast.modeling.intervals import base_scale
from stockcast.modeling.targets import FEATURE_COLUMNS, LogReturnTarget, ResidualTarget, Target, make_target
from stockcast.splits import SplitBounds, split_bounds, window_origins


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


# ---------------------------------------------------------------------------- the transform


@dataclass
class SeriesTransformer:
    """Fit on training rows only; map price frames to windows and predictions back to prices.
    What rows become in model units is the ``target``'s business (see ``targets``); this
    class cuts windows and keeps the echoed-input option."""

    target: Target = field(default_factory=LogReturnTarget)
    sequence_length: int = 60
    horizon: int = 1
    include_input: bool = False
    # The daily volatility the head's scale starts from (``model.volatility``).
    daily_scale: BaseScale = field(default_factory=CloseEwmaScale)


    def __setstate__(self, state: dict) -> None:
        # Models registered before the base-scale classes kept its name (``volatility``; none
        # before the range inputs: "close") and the HAR coefficients as fields.
        if "daily_scale" not in state:
            state["daily_scale"] = base_scale_named(state.pop("volatility", "close"),
                                                    state.pop("har_coefs", None))
        # Models registered before the target classes pickled the target as its name with
        # the scaler beside it: rebuild the fitted target so their champions still load.
        if isinstance(state.get("target"), str):
            target = make_target(state.pop("target"), state.pop("features", ("Close",)),
                                 state.pop("scaler_kind", "auto"))
            target.scaler = state.pop("scaler", None)
            if isinstance(target, ResidualTarget):
                target.residual_scale = state.pop("residual_scale", 1.0)
            state.pop("residual_scale", None)
            state["target"] = target
        self.__dict__.update(state)

    @property
    def features(self) -> tuple[str, ...]:
        """The model's input features, in column order."""
        return self.target.features

    @property
    def scaler(self) -> TransformerMixin | None:
        """The target's scaler (fitted on training rows)."""
        return self.target.scaler

    @property
    def input_columns(self) -> list[str]:
        """The raw price columns a frame must have for these features."""
        needed = {"Close"} | {c for f in self.features for c in FEATURE_COLUMNS.get(f, (f,))}
        needed |= set(self.daily_scale.columns)
        return [c for c in ("Open", "High", "Low", "Close", "Volume") if c in needed]

    def fit(self, frame: pd.DataFrame, train_end: int) -> SeriesTransformer:
        """Fit the target's scaling on training rows ``[0, train_end)`` only (no look-ahead)."""
        rows = self.target.row_features(frame.iloc[:train_end])[1:]  # row 0: no previous close
        self.target.fit(rows)
        self.daily_scale.fit(frame, train_end, self.horizon)
        return self

    def windows(self, frame: pd.DataFrame, origins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scaled windows X [W, L, F] (float32) and scaled targets y [W, h] for ``origins``."""
        return self.split_windows(frame, {"windows": origins})["windows"]

    def split_windows(
        self, frame: pd.DataFrame, origins: dict[str, np.ndarray]
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``windows`` for several origin sets (the splits), transforming the frame once."""
        if self.target.scaler is None:
            raise RuntimeError("SeriesTransformer.fit must be called before windows()")
        inputs, targets = self.target.scale_rows(self.target.row_features(frame))
        out = {}
        for name, idx in origins.items():
            x, y = make_windows(inputs, targets, idx, self.sequence_length, self.horizon,
                                self.include_input)
            x, y = self.target.make_relative(x, y, targets[idx])
            out[name] = (x.astype(np.float32), y.astype(np.float32))
        return out

    def to_prices(self, y_scaled: np.ndarray, last_close: np.ndarray) -> np.ndarray:
        """Scaled model outputs [W, k] -> closes [W, k], given each window's last close [W]."""
        return self.target.to_prices(y_scaled, last_close)

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

    @classmethod
    def joined(cls, splits: list[Split]) -> Split:
        """The windows of ``splits`` one after another (the origins stay each frame's rows)."""
        return cls(*(np.concatenate([getattr(s, f) for s in splits])
                     for f in ("x", "y", "origins", "base")))


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
        target=make_target(model.target, tuple(window.features), window.scaler),
        sequence_length=window.sequence_length,
        horizon=window.horizon,
        include_input=window.include_input,
        daily_scale=base_scale_named(model.volatility),
    ).fit(frame, bounds.train_end)
    windows = transformer.split_windows(frame, origins)
    splits = {name: Split(x, y, origins[name], base_scale(transformer, frame, origins[name]))
              for name, (x, y) in windows.items()}
    return PreparedData(frame, bounds, transformer, **splits)
