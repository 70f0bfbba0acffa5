"""Honest evaluation in price units, always beside the naive persistence forecast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.plotting import new_figure, save, serialized


def price_metrics(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE (%) over every (origin, step) pair, in price units."""
    pred = np.asarray(pred, dtype=np.float64).ravel()
    actual = np.asarray(actual, dtype=np.float64).ravel()
    err = pred - actual
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
        "mape": float(np.mean(np.abs(err / actual)) * 100.0),
    }


def naive_forecast(last_close: np.ndarray, horizon: int) -> np.ndarray:
    """Persistence: every future step equals the last observed close. [W] -> [W, horizon]."""
    return np.repeat(np.asarray(last_close, dtype=np.float64)[:, None], horizon, axis=1)


def score_forecasts(pred: np.ndarray, actual: np.ndarray, last_close: np.ndarray) -> dict[str, float]:
    """``test_*`` and ``naive_*`` metrics on the same targets, ``skill_rmse`` and per-step RMSE."""
    pred, actual = np.asarray(pred), np.asarray(actual)
    naive = naive_forecast(last_close, actual.shape[1])
    model = price_metrics(pred, actual)
    base = price_metrics(naive, actual)
    out = {f"test_{k}": v for k, v in model.items()}
    out |= {f"naive_{k}": v for k, v in base.items()}
    out["skill_rmse"] = 1.0 - model["rmse"] / base["rmse"] if base["rmse"] > 0 else float("nan")
    if actual.shape[1] > 1:
        for step in range(actual.shape[1]):
            out[f"test_rmse_step_{step + 1}"] = price_metrics(pred[:, step], actual[:, step])["rmse"]
    return out


# ---------------------------------------------------------------------------- plots


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
