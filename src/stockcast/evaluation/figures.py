"""The evaluation figures: the fan chart, calibration, loss per epoch, forecast errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.evaluation.baselines import naive_forecast
from stockcast.modeling.intervals import central_interval
from stockcast.plot_style import Margins, new_figure, save, serialized


@serialized
def plot_fan(dates: pd.Series, close: pd.Series, origin_idx: np.ndarray, forecast, ewma_q: np.ndarray,
             path: Path, ticker: str, metrics: dict[str, float], context_days: int = 120) -> Path:
    """Fan chart of the one-step-ahead forecasts over the test span: 80 % and 95 % intervals,
    the point forecast and the actual close, with the EWMA band's 95 % limits for comparison."""
    dates = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    close = pd.Series(close).reset_index(drop=True)
    target = dates.iloc[origin_idx + 1]
    lo80, hi80 = forecast.interval(0.8)
    lo95, hi95 = forecast.interval(0.95)
    levels = forecast.levels
    start = max(0, int(origin_idx[0]) - context_days)
    fig, ax = new_figure(figsize=(11, 5), margins=Margins(top=0.65))  # a two-line title
    ax.plot(dates.iloc[start:], close.iloc[start:], color="0.15", lw=1.0, label="actual close")
    ax.fill_between(target, lo95[:, 0], hi95[:, 0], color="tab:blue", alpha=0.18, lw=0,
                    label="LSTM 95 % interval")
    ax.fill_between(target, lo80[:, 0], hi80[:, 0], color="tab:blue", alpha=0.3, lw=0,
                    label="LSTM 80 % interval")
    ax.plot(target, forecast.point[:, 0], color="tab:blue", lw=1.0, label="LSTM point forecast")
    for j, q in ((levels.index(0.025), "EWMA band 95 %"), (levels.index(0.975), None)):
        ax.plot(target, ewma_q[:, 0, j], color="tab:orange", lw=0.8, ls="--", label=q)
    ax.axvline(target.iloc[0], color="0.5", lw=0.8, ls=":")
    ax.set(title=(f"{ticker}: one-step forecasts on the test span\n95 % coverage "
                  f"{metrics['test_coverage_95']:.1%} (EWMA {metrics['ewma_coverage_95']:.1%}), "
                  f"interval score {metrics['test_interval_score_95']:.3f} "
                  f"(EWMA {metrics['ewma_interval_score_95']:.3f}); point skill vs persistence "
                  f"{metrics['skill_rmse_pct']:+.2f} %"),
           xlabel="date", ylabel="price (adjusted, currency units)")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    return save(fig, path)


@serialized
def plot_coverage(dates: pd.Series, origin_idx: np.ndarray, forecast, ewma_q: np.ndarray,
                  actual: np.ndarray, path: Path, ticker: str, window: int = 60) -> Path:
    """Calibration: empirical vs nominal coverage per interval (model and EWMA band), and the
    rolling 95 % coverage of the one-step forecasts over the test span."""
    dates = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    levels = forecast.levels
    fig, (left, right) = new_figure(1, 2, figsize=(11, 4))
    nominal = [0.8, 0.95]
    for offset, (name, q) in enumerate((("LSTM", forecast.quantiles), ("EWMA band", ewma_q))):
        rates = []
        for cov in nominal:
            lo, hi = central_interval(q, levels, cov)
            rates.append(np.mean((actual >= lo) & (actual <= hi)))
        left.bar(np.arange(2) + 0.35 * offset, rates, width=0.35, label=name)
    left.scatter(np.arange(2) + 0.175, nominal, color="k", marker="_", s=400, label="nominal",
                 zorder=3)
    left.set(xticks=np.arange(2) + 0.175, xticklabels=["80 %", "95 %"], ylim=(0.5, 1.0),
             title=f"{ticker}: coverage on the test span", ylabel="share of actual closes inside")
    left.legend(fontsize=8)
    lo95, hi95 = forecast.interval(0.95)
    inside = pd.Series((actual[:, 0] >= lo95[:, 0]) & (actual[:, 0] <= hi95[:, 0]), dtype=float)
    right.plot(dates.iloc[origin_idx + 1], inside.rolling(window, min_periods=10).mean(),
               color="tab:blue", label=f"LSTM, rolling {window} days")
    right.axhline(0.95, color="k", lw=0.8, ls="--", label="nominal 95 %")
    right.set(title="rolling 95 % coverage (one step ahead)", xlabel="date", ylim=(0.5, 1.02))
    right.legend(fontsize=8)
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
           ylabel="Gaussian negative log-likelihood (scaled units)")
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
    ax.hist(naive_err, bins=bins, histtype="stepfilled", alpha=0.5, label="naive",
            color="tab:orange")
    ax.hist(model_err, bins=bins, histtype="stepfilled", alpha=0.6, label="LSTM", color="tab:blue")
    ax.set(title=f"{ticker}: forecast errors on the test span", xlabel="forecast - actual (price units)",
           ylabel="count")
    ax.legend()
    return save(fig, path)
