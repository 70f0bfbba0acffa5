"""Chronological split arithmetic: where train, validation and test end, which rows are window
origins in each, and how many rows a configuration needs. Depends only on the config, so data
validation, the EDA report and the windowing all use the same numbers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stockcast.config import WindowConfig

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitBounds:
    """Row index boundaries: train = [0, train_end), val = [train_end, val_end), test = [val_end, n)."""

    n: int
    train_end: int
    val_end: int


def split_bounds(n_rows: int, cfg: WindowConfig) -> SplitBounds:
    """Cut ``n_rows`` chronologically by the configured fractions."""
    train_end = int(round(n_rows * cfg.train_fraction))
    val_end = int(round(n_rows * (cfg.train_fraction + cfg.val_fraction)))
    return SplitBounds(n_rows, train_end, val_end)


def window_origins(n_rows: int, cfg: WindowConfig) -> dict[str, np.ndarray]:
    """Origin row indices of the windows in each split (possibly empty arrays)."""
    b = split_bounds(n_rows, cfg)
    seq, h = cfg.sequence_length, cfg.horizon
    # first target t+1 must lie in the split, last target t+h must too.
    ranges = {
        "train": (seq, b.train_end - 1 - h),
        "val": (max(seq, b.train_end - 1), b.val_end - 1 - h),
        "test": (max(seq, b.val_end - 1), b.n - 1 - h),
    }
    # ranges are inclusive; np.arange is empty when the split is too short.
    return {k: np.arange(lo, hi + 1, dtype=np.int64) for k, (lo, hi) in ranges.items()}


def min_rows(cfg: WindowConfig) -> int:
    """The fewest rows for which every split holds ``cfg.min_windows_per_split`` windows."""
    n = cfg.sequence_length + cfg.horizon + 1
    while True:
        counts = [len(o) for o in window_origins(n, cfg).values()]
        if min(counts) >= cfg.min_windows_per_split:
            return n
        n += max(1, (cfg.min_windows_per_split - min(counts)) // 2)
