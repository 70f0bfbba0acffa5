"""The evaluation stage: the trained model's test-span forecasts in price units, their metrics
beside the baselines, and the figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stockcast.errors import TrainingError
from stockcast.evaluation.metrics import score_forecasts
from stockcast.evaluation.plots import plot_forecast, plot_losses, plot_residuals
from stockcast.modeling.trainer import TrainResult, predict
from stockcast.modeling.windows import PreparedData


@dataclass(frozen=True)
class Evaluation:
    """Test-span forecasts in price units, their metrics, and the plots."""

    metrics: dict[str, float]
    pred: np.ndarray  # [W, horizon]
    actual: np.ndarray  # [W, horizon]
    origins: np.ndarray  # [W]
    plots: dict[str, Path] = field(default_factory=dict)


def evaluate_model(result: TrainResult, data: PreparedData, ticker: str, out_dir: Path) -> Evaluation:
    """Score the model on the test span against persistence and draw the plots."""
    test = data.test
    pred = data.to_prices(test, predict(result.model, test.x))
    if not np.isfinite(pred).all():
        raise TrainingError(
            f"{ticker}: the model's forecasts are not finite (overflow): training diverged. "
            "Lower train.lr or keep train.grad_clip set; no model was registered.")
    actual, last = data.actual_prices(test), data.last_close(test)
    metrics = score_forecasts(pred, actual, last)
    out_dir = Path(out_dir)
    plots = {
        "forecast": plot_forecast(data.frame["Date"], data.frame["Close"], test.origins, pred,
                                  out_dir / "forecast_vs_actual.png", ticker, metrics=metrics),
        "loss": plot_losses(result.history, result.best_epoch, out_dir / "loss.png", ticker),
        "residuals": plot_residuals(pred, actual, last, out_dir / "residuals.png", ticker),
    }
    return Evaluation(metrics, pred, actual, test.origins, plots)
