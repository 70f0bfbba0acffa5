"""The daily forecast flow: for each ticker, load its `champion`, forecast the next
``horizon`` trading days from the freshest validated prices, write and log the result."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import TerminationSignal
from prefect.runtime import deployment

from flows.notify import configured_url, notify_failure, send
from flows.observe import project_logs_in_prefect, publish_table, publish_warning
from flows.tasks import for_ticker, freshness_task, ingest_task, validate_task
from stockcast.config import PipelineConfig
from stockcast.errors import ConfigError, PipelineFailed
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import model_name
from stockcast.runtime import resolve_runtime
from stockcast.server_guard import guard_temporary_server
from stockcast.serving.champion import (
    ADAPTATION_COLUMNS,
    BAND_COLUMNS,
    drift_reference,
    forecast_next,
    load_champion,
    log_forecast,
    write_forecast,
)
from stockcast.serving.ledger import record_forecast, score_ledger
from stockcast.serving.monitoring import LiveReport, live_report
from stockcast.stopping import found_in_chain

champion_task = task(load_champion, name="load-champion", cache_policy=NO_CACHE)
predict_task = task(forecast_next, name="forecast", cache_policy=NO_CACHE)
write_task = task(write_forecast, name="write", cache_policy=NO_CACHE)
log_task = task(log_forecast, name="log-forecast", cache_policy=NO_CACHE)


@task(name="monitor", cache_policy=NO_CACHE)
def monitor_task(out_dir, ticker: str, forecast, frame, cfg: PipelineConfig, champion,
                 store: MlflowStore) -> LiveReport:
    """Keep today's forecast in the ledger and score the ones whose dates have arrived."""
    ledger = record_forecast(out_dir, ticker, forecast)
    reference = drift_reference(champion, store, frame)
    report = live_report(score_ledger(ledger.rows, frame), cfg.monitor, reference)
    return replace(report, notes=ledger.notes)


def forecast_ticker(ticker: str, cfg: PipelineConfig, store: MlflowStore,
                    days: int | None, scheduled: bool = False) -> dict[str, Any]:
    """One ticker: champion -> ingest -> validate -> freshness -> forecast -> write -> monitor
    -> log. Stale prices fail the ticker (``data.on_stale: fail``) or are forecast from, and
    flagged (``warn``, or historical data asked for explicitly), as in training."""
    def named(stage):
        return for_ticker(stage, ticker)

    champion = named(champion_task)(model_name(cfg.tracking.model_name_prefix, ticker), store,
                                    cfg.tracking.model_key)
    prices = named(ingest_task)(ticker, cfg.data)
    validated = named(validate_task)(prices, cfg.window, cfg.validation)
    fresh = named(freshness_task)(validated, cfg.data, scheduled)
    stale = (f"forecast from stale prices: they end {fresh.last_date}, {fresh.sessions_behind} "
             f"trading sessions ago ({fresh.reason})" if fresh.stale else None)
    if stale:
        get_run_logger().warning("%s: %s", ticker, stale)
    frame = validated.frame
    result = named(predict_task)(champion, frame, ticker)
    if days:
        result = result.head(days)
    paths = named(write_task)(result, frame, cfg.forecast.output_dir, ticker)
    live = named(monitor_task)(cfg.forecast.output_dir, ticker, result, frame, cfg, champion,
                               store)
    last_date = str(frame["Date"].iloc[-1].date())
    tags = {"data.source": prices.source, "data.end": last_date,
            "data.fallback": " | ".join(prices.notes) or "none",
            "monitor.drift": live.drift or "none", "monitor.basel_zone": live.zone,
            "monitor.statistic": live.statistic,
            "monitor.ledger": " | ".join(live.notes) or "ok", "data.stale": str(fresh.stale),
            "data.sessions_behind": str(fresh.sessions_behind)}
    named(log_task)(ticker, paths, champion.version, store,
                    f"{cfg.tracking.experiment}-forecasts", tags=tags, metrics=live.metrics,
                    forecast=result)
    return {"version": champion.version, "source": prices.source, "last_date": last_date,
            "path": str(paths["csv"]), "live": live.metrics, "drift": live.drift,
            "zone": live.zone, "stale": stale, "ledger": list(live.notes),
            "rows": [{"date": str(r.date.date()),
                      **{c: float(getattr(r, c)) for c in (*BAND_COLUMNS, *ADAPTATION_COLUMNS)
                         if c in result.columns}} for r in result.itertuples()]}


def _on_drift(ticker: str, drift: str, cfg: PipelineConfig) -> None:
    # Artifact keys take lowercase letters, digits and dashes only.
    publish_warning("drift-" + re.sub(r"[^a-z0-9]+", "-", ticker.lower()).strip("-"),
                    f"# stockcast: drift for {ticker}\n\n{drift}.\n\nRetrain "
                    "(`make run-flow`) and look at the live metrics in the MLflow experiment "
                    "`stockcast-forecasts`.")
    url = configured_url(cfg.notify.url)
    if url:
        send(url, f"stockcast: drift for {ticker}", drift)
    if cfg.monitor.retrain_deployment:
        from prefect.deployments import run_deployment

        run_deployment(cfg.monitor.retrain_deployment, parameters={"tickers": [ticker]},
                       timeout=0)


@flow(name="forecast-pipeline", log_prints=True, on_failure=[notify_failure],
      on_crashed=[notify_failure])
def forecast_pipeline(
    tickers: list[str] | None = None,
    config: PipelineConfig | None = None,
    tracking_uri: str | None = None,
    days: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Forecast every ticker with its champion and score the champion's earlier forecasts; a
    ticker without a champion is reported, not fatal to the others, and the flow fails at the
    end if any ticker failed."""
    if days is not None and (isinstance(days, bool) or days < 1):  # the CLI's bound
        raise ConfigError(f"days must be a whole number of at least 1 (the forecast days to "
                          f"keep), got {days}")
    cfg = resolve_runtime((config or PipelineConfig()).with_tickers(tickers), tracking_uri)
    guard_temporary_server()  # a killed run takes its temporary Prefect server with it
    store = MlflowStore.from_config(cfg.tracking)
    with project_logs_in_prefect():
        logger = get_run_logger()
        forecasts: dict[str, Any] = {}
        failures: dict[str, str] = {}
        scheduled = deployment.id is not None  # a deployment run (scheduled or triggered)
        for ticker in cfg.tickers:
            try:
                item = forecasts[ticker] = forecast_ticker(ticker, cfg, store, days, scheduled)
            except Exception as exc:  # reported per ticker; the flow fails at the end
                if (stop := found_in_chain(exc, (TerminationSignal, KeyboardInterrupt))) is not None:
                    raise stop from None  # SIGTERM or Ctrl-C, even inside another error
                failures[ticker] = f"{type(exc).__name__}: {exc}"
                logger.error("%s: no forecast: %s", ticker, exc)
                continue
            logger.info("%s: champion v%s, data to %s (%s): %s", ticker, item["version"],
                        item["last_date"], item["source"], ", ".join(
                            f"{r['date']} {r['forecast']:.2f} [{r['lower_95']:.2f}, "
                            f"{r['upper_95']:.2f}]" for r in item["rows"]))
            if item["drift"]:
                logger.warning("%s: DRIFT: %s", ticker, item["drift"])
                _on_drift(ticker, item["drift"], cfg)
        publish_table("forecast-summary", [_row(t, forecasts.get(t), failures.get(t))
                                           for t in cfg.tickers],
                      "stockcast forecasts: data used, the forecast, live metrics, drift")
        stale = [f"- STALE: {t}: {item['stale']}" for t, item in forecasts.items() if item["stale"]]
        stale += [f"- LEDGER: {t}: {note}" for t, item in forecasts.items()
                  for note in item["ledger"]]
        if stale:
            publish_warning("forecast-warnings", "\n".join(["# stockcast: forecast warnings",
                                                            "", *stale]))
    if failures:
        detail = "\n".join(f"  - {t}: {msg}" for t, msg in failures.items())
        raise PipelineFailed(f"no forecast for {len(failures)} of {len(cfg.tickers)} "
                             f"ticker(s):\n{detail}", forecasts, failures)
    return forecasts


def _row(ticker: str, item: dict | None, error: str | None) -> dict[str, Any]:
    if item is None:
        return {"ticker": ticker, "status": "FAILED", "reason": error}
    first = item["rows"][0]
    status = "DRIFT" if item["drift"] else "STALE" if item["stale"] else "ok"
    return {"ticker": ticker, "status": status,
            "champion": item["version"], "source": item["source"], "last_date": item["last_date"],
            "date": first["date"], "forecast": first["forecast"], "lower_95": first["lower_95"],
            "upper_95": first["upper_95"], **item["live"], "basel_zone": item["zone"],
            "reason": " | ".join(r for r in (item["drift"], item["stale"], *item["ledger"]) if r)}
