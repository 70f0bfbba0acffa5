"""The pipeline's stages as plain functions, in order. Flows wrap each in a Prefect task."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from stockcast import evaluate, ingest, registry, tracking
from stockcast.config import PipelineConfig
from stockcast.dataset import PreparedData
from stockcast.ingest import PriceData
from stockcast.schemas import ValidationReport, check_prices, raise_if_invalid
from stockcast.serving import StockcastForecaster
from stockcast.train import TrainResult, predict

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    """Test-span forecasts in price units, their metrics, and the plots."""

    metrics: dict[str, float]
    pred: np.ndarray  # [W, horizon]
    actual: np.ndarray  # [W, horizon]
    origins: np.ndarray  # [W]
    plots: dict[str, Path] = field(default_factory=dict)


def validate_stage(prices: PriceData, cfg: PipelineConfig) -> tuple[pd.DataFrame, ValidationReport]:
    """Validate, always saving the report (and failure-cases table) under the data dir; a fresh
    download becomes the cache only once it is valid."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    frame, report = check_prices(prices.frame, prices.ticker, cfg.window, cfg.validation)
    saved = report.save(Path(cfg.data.data_dir) / "reports" / prices.ticker /
                        f"{stamp}-validation")
    raise_if_invalid(report, saved)
    ingest.commit_to_cache(prices, frame, cfg.data.data_dir)
    for warning in report.warnings:
        log.warning("%s: %s", prices.ticker, warning)
    return frame, report


def evaluate_stage(result: TrainResult, data: PreparedData, ticker: str, out_dir: Path) -> Evaluation:
    """Score the model on the test span against persistence and draw the plots."""
    raw = predict(result.model, data.x["test"])
    pred = data.to_prices("test", raw)
    actual = data.actual_prices("test")
    metrics = evaluate.score_forecasts(pred, actual, data.last_close("test"))
    out_dir = Path(out_dir)
    plots = {
        "forecast": evaluate.plot_forecast(data.frame["Date"], data.frame["Close"],
                                           data.origins["test"], pred,
                                           out_dir / "forecast_vs_actual.png", ticker,
                                           metrics=metrics),
        "loss": evaluate.plot_losses(result.history, result.best_epoch, out_dir / "loss.png",
                                     ticker),
        "residuals": evaluate.plot_residuals(pred, actual, data.last_close("test"),
                                             out_dir / "residuals.png", ticker),
    }
    return Evaluation(metrics, pred, actual, data.origins["test"], plots)


def track_stage(
    prices: PriceData,
    report: ValidationReport,
    data: PreparedData,
    result: TrainResult,
    evaluation: Evaluation,
    cfg: PipelineConfig,
    tracking_uri: str,
    extra_artifacts: dict[str, Path] | None = None,  # MLflow folder -> file or folder
) -> tracking.LoggedRun:
    """Log the run (params, step and final metrics, artifacts, lineage, model) to MLflow."""
    # Configured here as well as at flow start: on the Dask runner this task runs in another
    # process, whose MLflow client has not been pointed at the store yet.
    experiment_id = tracking.configure_tracking(tracking_uri, cfg.tracking.experiment,
                                                cfg.tracking.max_retries)
    frame = data.frame
    tags = {
        "ticker": prices.ticker,
        "data.source": prices.source,
        "data.location": prices.location,
        "data.start": str(frame["Date"].iloc[0].date()),
        "data.end": str(frame["Date"].iloc[-1].date()),
        "data.rows": str(len(frame)),
        "data.digest": prices.digest,
        "data.snapshot": str(prices.snapshot_path or ""),
        "data.fallback": " | ".join(prices.notes) or "none",
        "code.version": tracking.git_commit(),
        "device": result.device,
        "amp": str(result.amp_dtype),
        "train.best_epoch": str(result.best_epoch),
        "train.seconds": f"{result.seconds:.2f}",
        "split.test_start": str(frame["Date"].iloc[int(evaluation.origins[0]) + 1].date()),
    }
    metrics = dict(evaluation.metrics)
    metrics["best_epoch"] = result.best_epoch
    metrics["train_seconds"] = result.seconds
    metrics["windows_per_second"] = result.windows_per_second
    with tempfile.TemporaryDirectory() as tmp:
        report_path = report.save(Path(tmp) / "validation")
        artifacts = [("plots", path) for path in evaluation.plots.values()]
        artifacts.append(("validation", report_path.parent))
        artifacts.extend((extra_artifacts or {}).items())
        python_model = StockcastForecaster(result.model, data.transformer, prices.ticker)
        return tracking.log_training_run(
            experiment_id=experiment_id,
            ticker=prices.ticker,
            params=cfg.flat(),
            tags=tags,
            history=result.history,
            metrics=metrics,
            frame=frame,
            data_source=(prices.location if "://" in prices.location
                         else Path(prices.location).resolve().as_uri()),
            artifacts=artifacts,
            config_yaml=yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False),
            python_model=python_model,
            torch_model=result.model,
            example_input=data.x["test"],
            transformer=data.transformer,
            retries=cfg.tracking.max_retries,
        )


def register_stage(logged: tracking.LoggedRun, ticker: str, cfg: PipelineConfig,
                   tracking_uri: str) -> str:
    """Register the run's model as a new version of the ticker's registered model."""
    name = registry.model_name(cfg.tracking.model_name_prefix, ticker)
    return tracking.with_retries(
        "registration",
        lambda: registry.register_version(logged.model_uri, name, logged.run_id, tracking_uri),
        cfg.tracking.max_retries,
    )


def promote_stage(version: str, ticker: str, data: PreparedData, evaluation: Evaluation,
                  cfg: PipelineConfig, tracking_uri: str) -> registry.Decision:
    """Move `champion` only if the new version beats it on the same data and passes the gate."""
    name = registry.model_name(cfg.tracking.model_name_prefix, ticker)
    return registry.promote_if_better(
        name,
        version,
        evaluation.metrics["test_rmse"],
        evaluation.metrics["skill_rmse"],
        data.frame,
        evaluation.origins,
        evaluation.actual,
        cfg.promotion,
        tracking_uri,
    )
