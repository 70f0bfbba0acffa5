"""From a validated price frame to scaled train/val/test windows, and back to price units."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import ModelConfig, WindowConfig
from stockcast.features import SeriesTransformer
from stockcast.windows import SPLITS, SplitBounds, split_bounds, window_origins


@dataclass
class PreparedData:
    """Scaled windows per split, the fitted transformer, and the frame they came from."""

    frame: pd.DataFrame
    bounds: SplitBounds
    origins: dict[str, np.ndarray]
    transformer: SeriesTransformer
    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]

    @property
    def close(self) -> np.ndarray:
        """Closes of the whole frame [N]."""
        return self.frame["Close"].to_numpy(dtype=np.float64)

    def actual_prices(self, split: str) -> np.ndarray:
        """True closes [W, horizon] after each origin of ``split``."""
        h = self.transformer.horizon
        return np.stack([self.close[self.origins[split] + k] for k in range(1, h + 1)], axis=1)

    def last_close(self, split: str) -> np.ndarray:
        """The last observed close at each origin of ``split`` [W]."""
        return self.close[self.origins[split]]

    def to_prices(self, split: str, y_scaled: np.ndarray) -> np.ndarray:
        """Scaled predictions for ``split`` -> forecast closes [W, horizon]."""
        future = self.transformer.future_part(np.asarray(y_scaled))
        return self.transformer.to_prices(future, self.last_close(split))


def prepare_windows(frame: pd.DataFrame, window: WindowConfig, model: ModelConfig) -> PreparedData:
    """Split chronologically, fit the scaler on training rows only, build every split's windows."""
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
    windows = transformer.split_windows(frame, {split: origins[split] for split in SPLITS})
    xs = {split: x for split, (x, _) in windows.items()}
    ys = {split: y for split, (_, y) in windows.items()}
    return PreparedData(frame.reset_index(drop=True), bounds, origins, transformer, xs, ys)
