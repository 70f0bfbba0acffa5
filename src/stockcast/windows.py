"""Chronological splits and vectorised (past -> future) windows.

Row ``t`` is a window's *origin*: its inputs are rows ``t-L+1 .. t`` and its targets rows
``t+1 .. t+h``. A window belongs to the split that holds all of its targets; its inputs may
reach back into the previous split (that is the past, known at forecast time), never forward.
Row 0 is never an input, so return-based features (which need the previous close) and
price features produce exactly the same windows, and formulations compare on the same days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
