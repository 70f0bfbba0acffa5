"""The evaluation figures: forecast vs actual, loss per epoch, forecast errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.evaluation.metrics import naive_forecast
from stockcast.evaluation.plotting import new_figure, save, serialized


@serialized
def plot_forecast(
    dates: pd.Series,
    close: pd.Series,
    origin_idx: np.ndarray,
    pred: np.ndarray,
    path: Path,
    ticker: str,
    context_days: int = 120,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Prediction vs actual (first forecast step) over the test span, with recent history and
    the naive line for context."""
    dates = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    close = pd.Series(close).reset_index(drop=True)
    target_idx = origin_idx + 1
    lo = max(0, int(origin_idx[0]) - context_days)
    fig, ax = new_figure(figsize=(11, 5))
    ax.plot(dates.iloc[lo:], close.iloc[lo:], color="0.2", lw=1.2, label="actual close")
    ax.plot(dates.iloc[target_idx], pred[:, 0], color="tab:blue", lw=1.4,
            label="LSTM forecast (1 step ahead)")
    # Drawn on top: when the model hugs persistence, the overlap is the finding.
    ax.plot(dates.iloc[target_idx], close.iloc[origin_idx].to_numpy(), color="tab:orange",
            lw=1.0, ls="--", label="naive (last close)")
    ax.axvline(dates.iloc[int(target_idx[0])], color="0.5", lw=0.8, ls=":")
    title = f"{ticker}: forecast vs actual on the test span"
    if metrics:
        title += (f"\nRMSE {metrics['test_rmse']:.3f} vs naive {metrics['naive_rmse']:.3f} "
                  f"(skill {metrics['skill_rmse']:+.2%})")
    ax.set(title=title, xlabel="date",
           ylabel="price (adjusted, currency units)")
    ax.legend(loc="best")
    fig.autofmt_xdate()
    return save(fig, path)


@serialized
def plot_losses(history: list[dict[str, float]], best_epoch: int, path: Path, ticker: str) -> Path:
    """Training and validation loss per epoch, best epoch marked."""
    epochs = np.arange(1, len(history) + 1)
    fig, ax = new_figure(figsize=(8, 4.5))
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", ms=3, label="train")
    ax.plot(epochs, [h["val_loss"] for h in history], marker="o", ms=3, label="validation")
    ax.axvline(best_epoch, color="0.5", ls=":", label=f"best epoch ({best_epoch})")
    ax.set(title=f"{ticker}: loss per epoch", xlabel="epoch",
           ylabel="MSE (scaled units)")
    ax.set_yscale("log")
    ax.legend()
    return save(fig, path)


@serialized
def plot_residuals(pred: np.ndarray, actual: np.ndarray, last_close: np.ndarray, path: Path,
                   ticker: str) -> Path:
    """Histogram of forecast errors for the model and for persistence."""
    fig, ax = new_figure(figsize=(8, 4.5))
    model_err = (np.asarray(pred) - actual).ravel()
    naive_err = (naive_forecast(last_close, actual.shape[1]) - actual).ravel()
    bins = np.histogram_bin_edges(np.r_[model_err, naive_err], bins=50)
    ax.hist(naive_err, bins=bins, alpha=0.5, label="naive", color="tab:orange")
    ax.hist(model_err, bins=bins, alpha=0.6, label="LSTM", color="tab:blue")
    ax.set(title=f"{ticker}: forecast errors on the test span", xlabel="forecast - actual (price units)",
           ylabel="count")
    ax.legend()
    return save(fig, path)
