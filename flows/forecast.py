"""The daily forecast flow: for each ticker, load its `champion`, forecast the next
``horizon`` trading days from the freshest validated prices, write and log the result."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.tasks import ingest_task, validate_task
from stockcast import forecasting
from stockcast.config import PipelineConfig
from stockcast.errors import PipelineFailed
from stockcast.registry.versions import model_name
from stockcast.runtime import resolve_runtime

BANDS = ("forecast", "lower_80", "upper_80", "lower_95", "upper_95")

champion_task = task(forecasting.load_champion, name="load-champion", cache_policy=NO_CACHE)
predict_task = task(forecasting.forecast_next, name="forecast", cache_policy=NO_CACHE)
write_task = task(forecasting.write_forecast, name="write", cache_policy=NO_CACHE)
log_task = task(forecasting.log_forecast, name="log-forecast", cache_policy=NO_CACHE)


@flow(name="forecast-pipeline", log_prints=True)
def forecast_pipeline(
    tickers: list[str] | None = None,
    config: PipelineConfig | None = None,
    tracking_uri: str | None = None,
    days: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Forecast every ticker with its champion; a ticker without one is reported, not fatal to
    the others, and the flow fails at the end if any ticker failed."""
    cfg = resolve_runtime((config or PipelineConfig()).with_tickers(tickers), tracking_uri)
    uri = cfg.tracking.tracking_uri
    logger = get_run_logger()
    forecasts: dict[str, Any] = {}
    failures: dict[str, str] = {}
    for ticker in cfg.tickers:
        try:
            champion = champion_task(model_name(cfg.tracking.model_name_prefix, ticker), uri,
                                     cfg.tracking.model_key)
            prices = ingest_task(ticker, cfg.data)
            frame = validate_task(prices, cfg.window, cfg.validation).frame
            result = predict_task(champion, frame, ticker)
            if days:
                result = result.head(days)
            paths = write_task(result, frame, cfg.forecast.output_dir, ticker)
            log_task(ticker, paths, champion.version, f"{cfg.tracking.experiment}-forecasts", uri,
                     cfg.tracking.max_retries)
        except Exception as exc:
            failures[ticker] = f"{type(exc).__name__}: {exc}"
            logger.error("%s: no forecast: %s", ticker, exc)
            continue
        forecasts[ticker] = {
            "version": champion.version,
            "source": prices.source,
            "last_date": str(frame["Date"].iloc[-1].date()),
            "path": str(paths["csv"]),
            "rows": [{"date": str(r.date.date()), **{c: float(getattr(r, c)) for c in BANDS}}
                     for r in result.itertuples()],
        }
        logger.info("%s: champion v%s forecast %s", ticker, champion.version,
                    ", ".join(f"{r['date']}={r['forecast']:.2f}" for r in forecasts[ticker]["rows"]))
    if failures:
        detail = "\n".join(f"  - {t}: {msg}" for t, msg in failures.items())
        raise PipelineFailed(f"no forecast for {len(failures)} of {len(cfg.tickers)} "
                             f"ticker(s):\n{detail}", forecasts, failures)
    return forecasts
