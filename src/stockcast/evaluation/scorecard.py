"""The evaluation stage: the calibrated forecaster's test-span forecasts in price units, scored
beside persistence, a constant drift and the EWMA band on exactly the same (origin, step)
targets, with significance tests and the out-of-sample forecast table; the figures are drawn
apart (``evaluation_figures``), only for the runs whose figures are kept (``tracking.figures``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.errors import TrainingError
from stockcast.evaluation.baselines import drift_forecast, ewma_band, naive_forecast, training_drift
from stockcast.evaluation.earlier_folds import WalkForward, confirm_baseline
from stockcast.evaluation.figures import plot_coverage, plot_fan, plot_losses, plot_residuals
from stockcast.evaluation.forecast_tables import forecast_table
from stockcast.evaluation.forecaster_choice import (
    Choice,
    choose_forecaster,
    lstm_name,
    served_metrics,
)
from stockcast.evaluation.interval_scores import (
    coverage_rate,
    interval_score,
    pinball_loss,
    relative_interval_score,
    width_bp,
)
from stockcast.evaluation.point_metrics import score_forecasts
from stockcast.evaluation.significance import dm_test
from stockcast.modeling.adaptive import Tracking, adapted_forecast
from stockcast.modeling.forecaster import Forecast, ServedForecaster
from stockcast.modeling.intervals import central_interval
from stockcast.modeling.recipe import TickerFit
from stockcast.modeling.volatility_forecasters import (
    BY_PREFIX,
    VolatilityForecaster,
)

COVERAGES = (0.8, 0.95)


@dataclass(frozen=True)
class Evaluation:
    """Test-span forecasts in price units, their metrics, the forecast table, the choice.
    ``metrics`` headline the served forecaster (``served_metrics``); ``forecast`` is the
    LSTM's, whose metrics are ``lstm_metrics``."""

    metrics: dict[str, float]
    forecast: Forecast
    actual: np.ndarray  # [W, horizon]
    origins: np.ndarray  # [W]
    table: pd.DataFrame  # the served forecaster's rows per (target date, step): promotion's
    choice: Choice | None = None  # which forecaster is served, and why
    evaluated: ServedForecaster | None = None  # it, as evaluated

    @property
    def decision_metrics(self) -> dict[str, float]:
        """The metrics of the served forecaster, as the promotion sanity gate reads them."""
        return self.metrics

    @property
    def served_label(self) -> str:
        """The volatility model served in the LSTM's place, in words; empty when the LSTM is."""
        choice = self.choice
        return "" if choice is None or choice.is_lstm else BY_PREFIX[choice.prefix].name

    @property
    def lstm_metrics(self) -> dict[str, float]:
        """The metrics with the LSTM's values under the headline names (figures of the LSTM)."""
        if self.choice is None or self.choice.is_lstm:
            return self.metrics
        return self.metrics | {k: self.metrics[lstm_name(k)] for k in self.metrics
                               if lstm_name(k) in self.metrics and not k.startswith("lstm_")}


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
              bands: dict[str, np.ndarray]) -> dict[str, float]:
    """Every metric of a run: point metrics vs persistence and drift with DM p-values, return
    metrics, and interval metrics for the model (``test_``) and each volatility baseline's
    quantiles in ``bands`` (``ewma_`` raw, the calibrated ``ewmacal_``, ``rangevol_``, ``har_``,
    ``garch_``), with ``dm_pvalue_is95_<baseline>``: the one-sided DM p of "the model's 95 %
    interval score is lower"."""
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
    model_loss = relative_interval_score(forecast.quantiles, forecast.levels, actual, last)
    for prefix, quantiles in bands.items():
        metrics |= interval_metrics(prefix, quantiles, forecast.levels, actual, last)
        band_loss = relative_interval_score(quantiles, forecast.levels, actual, last)
        metrics[f"dm_pvalue_is95_{prefix}"] = dm_test(model_loss, band_loss, h).pvalue
    return metrics


@dataclass(frozen=True)
class SpanScores:
    """A fit's test-span forecasts, what happened, the baselines' inputs and every metric."""

    forecast: Forecast
    actual: np.ndarray  # [W, horizon]
    last: np.ndarray  # [W] the last close at each origin
    drift: float  # the training span's mean daily log return
    bands: dict[str, np.ndarray]  # [W, horizon, Q] per volatility baseline (``score_all``)
    baselines: dict[str, VolatilityForecaster]  # the calibrated ones, fitted as the model was
    metrics: dict[str, float]

    @property
    def ewma_quantiles(self) -> np.ndarray:
        """The raw EWMA band [W, horizon, Q] (the fan chart's reference)."""
        return self.bands["ewma"]


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
    h = actual.shape[1]
    baselines = {prefix: model.fitted(data.frame, data.bounds.train_end, data.val.origins, h)
                 for prefix, model in BY_PREFIX.items()}
    bands = {"ewma": ewma_band(data.frame, test.origins, h, forecast.levels)} | {
        prefix: b.forecast_at(data.frame, test.origins).quantiles for prefix, b in baselines.items()}
    drift = training_drift(data.close, data.bounds.train_end)
    return SpanScores(forecast, actual, last, drift, bands, baselines,
                      score_all(forecast, actual, last, drift, bands))


def evaluate_model(fit: TickerFit, ticker: str, alpha: float = 0.05,
                   tracking: Tracking | None = None,
                   walk_forward: WalkForward | None = None) -> Evaluation:
    """Score the calibrated model on the test span against the baselines and choose the
    forecaster to serve (``choose_forecaster`` at ``alpha``); no files, no figures. The
    served forecaster's bands as they are served, adapting to its misses day by day through
    the test span (``tracking``, the defaults when None), are scored too: ``adapted_*``.
    A baseline better on the test span alone is served only if ``walk_forward``'s folds
    confirm it (``earlier_folds.confirm_baseline``; None: the test span decides)."""
    span = score_test_span(fit, ticker)
    data, test = fit.data, fit.data.test
    choice = choose_forecaster(span.metrics, alpha)
    if not choice.is_lstm and walk_forward is not None:
        levels = span.forecast.levels
        tonight = (relative_interval_score(span.bands[choice.prefix], levels, span.actual,
                                           span.last),
                   relative_interval_score(span.forecast.quantiles, levels, span.actual,
                                           span.last),
                   data.frame["Date"].iloc[test.origins].reset_index(drop=True))
        choice = confirm_baseline(choice, fit, tonight, walk_forward, alpha)
    evaluated = fit.forecaster if choice.is_lstm else span.baselines[choice.prefix]
    served = span.forecast if choice.is_lstm else evaluated.forecast_at(data.frame, test.origins)
    table = forecast_table(data.frame["Date"], test.origins, served, span.actual)
    metrics = served_metrics(span.metrics, {} if choice.is_lstm else score_all(
        served, span.actual, span.last, span.drift, {}), choice)
    adapted = adapted_forecast(evaluated, data.frame, test.origins, tracking or Tracking())
    metrics |= interval_metrics("adapted", adapted.forecast.quantiles, adapted.forecast.levels,
                                span.actual, span.last)
    return Evaluation(metrics, span.forecast, span.actual, test.origins, table, choice, evaluated)


def evaluation_figures(fit: TickerFit, evaluation: Evaluation, out_dir: Path,
                       ticker: str) -> dict[str, Path]:
    """The evaluation's figures as PNG files: the fan chart, calibration, the loss per epoch
    and the forecast errors beside persistence's."""
    data, result, out = fit.data, fit.result, Path(out_dir)
    forecast, actual, metrics = evaluation.forecast, evaluation.actual, evaluation.lstm_metrics
    dates, origins = data.frame["Date"], evaluation.origins
    ewma_q = ewma_band(data.frame, origins, actual.shape[1], forecast.levels)  # the reference
    return {
        "forecast": plot_fan(dates, data.frame["Close"], origins, forecast, ewma_q,
                             out / "forecast_fan.png", ticker, metrics),
        "coverage": plot_coverage(dates, origins, forecast, ewma_q, actual, out / "coverage.png",
                                  ticker),
        "loss": plot_losses(result.history, result.best_epoch, out / "loss.png", ticker),
        "residuals": plot_residuals(forecast.point, actual, data.last_close(data.test),
                                    out / "residuals.png", ticker),
    }
