"""The daily forecast flow: for each ticker, load its `champion`, forecast the next
``horizon`` trading days from the freshest validated prices, write and log the result."""

from __future__ import annotations

from typing import Any

import mlflow
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.tasks import ingest_for, validate_task
from stockcast import forecasting, tracking
from stockcast.config import PipelineConfig
from stockcast.errors import PipelineFailed
from stockcast.registry import model_name
from stockcast.runtime import resolve_runtime

champion_task = task(forecasting.load_champion, name="load-champion", cache_policy=NO_CACHE)
predict_task = task(forecasting.forecast_next, name="forecast", cache_policy=NO_CACHE)
write_task = task(forecasting.write_forecast, name="write", cache_policy=NO_CACHE)


@task(name="log-forecast", cache_policy=NO_CACHE)
def log_task(ticker: str, paths: dict, version: str, experiment: str, uri: str) -> str:
    """Record the forecast files in MLflow (experiment ``<experiment>-forecasts``)."""
    experiment_id = tracking.configure_tracking(uri, f"{experiment}-forecasts")
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{ticker}-forecast") as run:
        mlflow.set_tags({"ticker": ticker, "champion_version": version, "kind": "forecast"})
        for path in paths.values():
            mlflow.log_artifact(str(path), artifact_path="forecast")
        return run.info.run_id


@flow(name="forecast-pipeline", log_prints=True)
def forecast_pipeline(
    tickers: list[str] | None = None,
    config: PipelineConfig | None = None,
    tracking_uri: str | None = None,
    days: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Forecast every ticker with its champion; a ticker without one is reported, not fatal to
    the others, and the flow fails at the end if any ticker failed."""
    cfg = config or PipelineConfig()
    if tickers:
        cfg = cfg.model_copy(update={"tickers": tuple(t.strip().upper() for t in tickers)})
    cfg = resolve_runtime(cfg, tracking_uri)
    uri = cfg.tracking.tracking_uri
    logger = get_run_logger()
    forecasts: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for ticker in cfg.tickers:
        try:
            champion = champion_task(model_name(cfg.tracking.model_name_prefix, ticker), uri)
            prices = ingest_for(cfg)(ticker, cfg.data)
            frame, _ = validate_task(prices, cfg)
            result = predict_task(champion, frame)
            if days:
                result = result.head(days)
            paths = write_task(result, frame, cfg.forecast.output_dir, ticker)
            log_task(ticker, paths, champion.version, cfg.tracking.experiment, uri)
        except Exception as exc:
            failures[ticker] = f"{type(exc).__name__}: {exc}"
            logger.error("%s: no forecast: %s", ticker, exc)
            continue
        forecasts[ticker] = {
            "version": champion.version,
            "source": prices.source,
            "last_date": str(frame["Date"].iloc[-1].date()),
            "path": str(paths["csv"]),
            "rows": [{"date": str(r.date.date()), "forecast": float(r.forecast)}
                     for r in result.itertuples()],
        }
        logger.info("%s: champion v%s forecast %s", ticker, champion.version,
                    ", ".join(f"{r['date']}={r['forecast']:.2f}" for r in forecasts[ticker]["rows"]))
    if failures:
        detail = "\n".join(f"  - {t}: {msg}" for t, msg in failures.items())
        raise PipelineFailed(f"no forecast for {len(failures)} of {len(cfg.tickers)} "
                             f"ticker(s):\n{detail}", forecasts, failures)
    return forecasts
