"""The evaluation stage: the calibrated forecaster's test-span forecasts in price units, scored
beside persistence, a constant drift and the EWMA band on exactly the same (origin, step)
targets, with significance tests, the out-of-sample forecast table and the figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.errors import TrainingError
from stockcast.evaluation.baselines import drift_forecast, ewma_band, naive_forecast, training_drift
from stockcast.evaluation.figures import plot_coverage, plot_fan, plot_losses, plot_residuals
from stockcast.evaluation.interval_scores import coverage_rate, interval_score, pinball_loss, width_bp
from stockcast.evaluation.point_metrics import score_forecasts
from stockcast.evaluation.significance import dm_test
from stockcast.modeling.forecaster import Forecast
from stockcast.modeling.intervals import central_interval
from stockcast.modeling.recipe import TickerFit

COVERAGES = (0.8, 0.95)


@dataclass(frozen=True)
class Evaluation:
    """Test-span forecasts in price units, their metrics, the forecast table, the plots."""

    metrics: dict[str, float]
    forecast: Forecast
    actual: np.ndarray  # [W, horizon]
    origins: np.ndarray  # [W]
    table: pd.DataFrame  # one row per (target date, step): point, quantiles, actual
    plots: dict[str, Path] = field(default_factory=dict)


def interval_metrics(prefix: str, quantiles: np.ndarray, levels: tuple[float, ...],
                     actual: np.ndarray, last: np.ndarray) -> dict[str, float]:
    """Coverage, width (bp) and interval score of each central interval, and the pinball loss."""
    out = {f"{prefix}_pinball": float(pinball_loss(quantiles, actual, levels).mean())}
    for cov in COVERAGES:
        lo, hi = central_interval(quantiles, levels, cov)
        pct = round(cov * 100)
        out[f"{prefix}_coverage_{pct}"] = coverage_rate(lo, hi, actual)
        out[f"{prefix}_width_{pct}_bp"] = width_bp(lo, hi, last)
        out[f"{prefix}_interval_score_{pct}"] = float(interval_score(lo, hi, actual, cov).mean())
    return out


def _returns_metrics(point: np.ndarray, actual: np.ndarray, last: np.ndarray) -> dict[str, float]:
    pred_r = np.log(point / last[:, None]).ravel()
    real_r = np.log(actual / last[:, None]).ravel()
    sst = float(np.sum((real_r - real_r.mean()) ** 2))
    corr = float(np.corrcoef(pred_r, real_r)[0, 1]) if np.ptp(pred_r) > 0 else float("nan")
    return {
        "test_direction_accuracy": float(np.mean(np.sign(pred_r) == np.sign(real_r))),
        "always_up_rate": float(np.mean(real_r > 0)),
        "test_return_corr": corr,
        "test_return_r2": 1.0 - float(np.sum((real_r - pred_r) ** 2)) / sst if sst > 0 else float("nan"),
    }


def score_all(forecast: Forecast, actual: np.ndarray, last: np.ndarray, drift: float,
              ewma_quantiles: np.ndarray) -> dict[str, float]:
    """Every metric of a run: point metrics vs persistence and drift with DM p-values, return
    metrics, and interval metrics for the model (``test_``) and the EWMA band (``ewma_``)."""
    h = actual.shape[1]
    point = forecast.point
    metrics = score_forecasts(point, actual, last)
    metrics["skill_rmse_pct"] = 100.0 * metrics["skill_rmse"]
    drift_pred = drift_forecast(last, h, drift)
    metrics["drift_rmse"] = float(np.sqrt(np.mean((drift_pred - actual) ** 2)))
    sq = (point - actual) ** 2
    metrics["dm_pvalue_naive"] = dm_test(sq, (naive_forecast(last, h) - actual) ** 2, h).pvalue
    metrics["dm_pvalue_drift"] = dm_test(sq, (drift_pred - actual) ** 2, h).pvalue
    metrics |= _returns_metrics(point, actual, last)
    metrics |= interval_metrics("test", forecast.quantiles, forecast.levels, actual, last)
    metrics |= interval_metrics("ewma", ewma_quantiles, forecast.levels, actual, last)
    return metrics


def forecast_table(dates: pd.Series, origins: np.ndarray, forecast: Forecast,
                   actual: np.ndarray) -> pd.DataFrame:
    """The out-of-sample forecasts as rows (date = target date, step, origin_date, point,
    q0.025 ... q0.975, actual): what promotion compares across versions."""
    dates = pd.to_datetime(pd.Series(dates)).reset_index(drop=True)
    w, h = actual.shape
    steps = np.tile(np.arange(1, h + 1), w)
    origin_rows = np.repeat(origins, h)
    table = pd.DataFrame({
        "date": dates.iloc[origin_rows + steps].to_numpy(),
        "step": steps,
        "origin_date": dates.iloc[origin_rows].to_numpy(),
        "point": forecast.point.ravel(),
    })
    for j, level in enumerate(forecast.levels):
        table[f"q{level:g}"] = forecast.quantiles[:, :, j].ravel()
    table["actual"] = actual.ravel()
    return table


@dataclass(frozen=True)
class SpanScores:
    """A fit's test-span forecasts, what happened, the baselines' inputs and every metric."""

    forecast: Forecast
    actual: np.ndarray  # [W, horizon]
    last: np.ndarray  # [W] the last close at each origin
    drift: float  # the training span's mean daily log return
    ewma_quantiles: np.ndarray  # [W, horizon, Q] the EWMA band
    metrics: dict[str, float]


def score_test_span(fit: TickerFit, ticker: str = "") -> SpanScores:
    """Forecast the fit's test span and score it beside every baseline (no plots, no files)."""
    data, test = fit.data, fit.data.test
    last = data.last_close(test)
    forecast = fit.forecaster.forecast_split(test, last)
    if not (np.isfinite(forecast.point).all() and np.isfinite(forecast.quantiles).all()):
        raise TrainingError(
            f"{ticker or 'the series'}: the model's forecasts are not finite (overflow): "
            "training diverged. Lower train.lr or keep train.grad_clip set; no model was "
            "registered.")
    actual = data.actual_prices(test)
    ewma_q = ewma_band(data.close, test.origins, actual.shape[1], forecast.levels)
    drift = training_drift(data.close, data.bounds.train_end)
    return SpanScores(forecast, actual, last, drift, ewma_q,
                      score_all(forecast, actual, last, drift, ewma_q))


def evaluate_model(fit: TickerFit, ticker: str, out_dir: Path) -> Evaluation:
    """Score the calibrated model on the test span against the baselines and draw the plots."""
    span = score_test_span(fit, ticker)
    data, result, test = fit.data, fit.result, fit.data.test
    forecast, actual, metrics, ewma_q = span.forecast, span.actual, span.metrics, span.ewma_quantiles
    out_dir = Path(out_dir)
    dates = data.frame["Date"]
    plots = {
        "forecast": plot_fan(dates, data.frame["Close"], test.origins, forecast, ewma_q,
                             out_dir / "forecast_fan.png", ticker, metrics),
        "coverage": plot_coverage(dates, test.origins, forecast, ewma_q, actual,
                                  out_dir / "coverage.png", ticker),
        "loss": plot_losses(result.history, result.best_epoch, out_dir / "loss.png", ticker),
        "residuals": plot_residuals(forecast.point, actual, span.last, out_dir / "residuals.png",
                                    ticker),
    }
    table = forecast_table(dates, test.origins, forecast, actual)
    return Evaluation(metrics, forecast, actual, test.origins, table, plots)
