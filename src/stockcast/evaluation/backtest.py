"""Walk-forward backtest: retrain at k rolling origins and score each following block.

The last ``test_fraction`` of the history is cut into k consecutive blocks. For fold i the
model is trained and early-stopped on everything before block i (split train/val in the
configured ratio) and scored on block i against persistence: a check that a configuration
holds up across market regimes, not just on one test span.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import ModelConfig, TrainConfig, WindowConfig
from stockcast.errors import ConfigError
from stockcast.evaluation.scorecard import score_all, score_test_span
from stockcast.modeling.forecaster import Forecast
from stockcast.modeling.recipe import fit_and_calibrate


@dataclass
class BacktestResult:
    """Metrics per fold and pooled over every fold's forecasts."""

    folds: pd.DataFrame  # one row per fold: test dates, windows, test_*/naive_*/skill_rmse
    aggregate: dict[str, float]


def fold_windows(n_rows: int, window: WindowConfig, folds: int) -> list[tuple[int, WindowConfig]]:
    """(rows used, window config) per fold: fold i ends at the end of test block i."""
    if folds < 1:
        raise ConfigError("backtest folds must be >= 1")
    test_rows = int(round(n_rows * window.test_fraction))
    block = test_rows // folds
    if block <= window.horizon:
        raise ConfigError(f"{folds} folds leave {block} test rows each; use fewer folds")
    ratio = window.train_fraction / (window.train_fraction + window.val_fraction)
    out = []
    for i in range(folds):
        end = n_rows - test_rows + (i + 1) * block
        test_fraction = block / end
        rest = 1.0 - test_fraction
        out.append((end, window.model_copy(update={
            "train_fraction": rest * ratio,
            "val_fraction": 1.0 - test_fraction - rest * ratio,
            "test_fraction": test_fraction,
            "min_windows_per_split": 1,
        })))
    return out


def walk_forward(frame: pd.DataFrame, window: WindowConfig, model: ModelConfig,
                 train: TrainConfig, folds: int = 4,
                 on_fold: Callable[[dict, int], None] | None = None) -> BacktestResult:
    """Retrain and recalibrate at each of ``folds`` rolling origins; point and interval metrics
    per fold and pooled over every fold's forecasts. ``on_fold(row, folds)`` hears of each
    fold as it ends (its table row, with ``seconds``)."""
    rows, parts = [], []
    for i, (end, fold_window) in enumerate(fold_windows(len(frame), window, folds), start=1):
        start = time.perf_counter()
        part = frame.iloc[:end].reset_index(drop=True)
        fit = fit_and_calibrate(part, fold_window, model, train)
        span = score_test_span(fit)
        origins = fit.data.test.origins
        rows.append({
            "fold": i,
            "test_start": part["Date"].iloc[int(origins[0]) + 1].date(),
            "test_end": part["Date"].iloc[int(origins[-1]) + window.horizon].date(),
            "windows": len(origins),
            "best_epoch": fit.result.best_epoch,
            **span.metrics,
            "seconds": time.perf_counter() - start,
        })
        if on_fold is not None:
            on_fold(rows[-1], folds)
        parts.append((span.forecast, span.actual, span.last, span.drift, span.bands))
    pooled_fc = Forecast(np.concatenate([p[0].point for p in parts]),
                         np.concatenate([p[0].quantiles for p in parts]), parts[0][0].levels)
    pooled = score_all(pooled_fc, *(np.concatenate([p[k] for p in parts]) for k in (1, 2)),
                       float(np.mean([p[3] for p in parts])),
                       {k: np.concatenate([p[4][k] for p in parts]) for k in parts[0][4]})
    table = pd.DataFrame(rows)
    aggregate = {f"pooled_{k}": v for k, v in pooled.items() if not k.startswith("test_rmse_step")}
    aggregate["mean_skill_rmse"] = float(table["skill_rmse"].mean())
    aggregate["folds_beating_naive"] = int((table["skill_rmse"] > 0).sum())
    aggregate["folds_beating_ewma_interval_score"] = int(
        (table["test_interval_score_95"] < table["ewma_interval_score_95"]).sum())
    return BacktestResult(table, aggregate)
