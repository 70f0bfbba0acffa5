"""Tasks both flows share. Each task calls one plain function of the package; retries live in
the package (one policy per I/O boundary: ``data.retries`` for Yahoo Finance,
``tracking.max_retries`` for MLflow), so no task here retries."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from stockcast.config import DataConfig
from stockcast.data.cache import commit_to_cache
from stockcast.data.freshness import check_freshness
from stockcast.data.schemas import ValidatedPrices, validate_prices
from stockcast.data.sources import Prefetched, load_prices, prefetch_yahoo

# Every task is side-effecting or takes frames/models: never cache on inputs.
ingest_task = task(load_prices, name="ingest", cache_policy=NO_CACHE)
validate_task = task(validate_prices, name="validate", cache_policy=NO_CACHE)
freshness_task = task(check_freshness, name="freshness", cache_policy=NO_CACHE)


@task(name="download", task_run_name="download-{tickers[0]}-and-more", cache_policy=NO_CACHE)
def download_task(tickers: tuple[str, ...], cfg: DataConfig) -> dict[str, Prefetched]:
    """A wave's Yahoo downloads at once (I/O, so they overlap); each ticker's ingest then
    takes its own result or its own error."""
    return prefetch_yahoo(tickers, cfg)


@task(name="commit-cache", cache_policy=NO_CACHE)
def commit_cache_task(validated: ValidatedPrices, data_dir: Path) -> Path | None:
    """A validated fresh download becomes the ticker's cache (nothing else ever does)."""
    return commit_to_cache(validated.ticker, validated.frame, validated.prices.cache_pending,
                           data_dir)


def for_ticker(stage, ticker: str):
    """The task with its runs named ``<stage>-<TICKER>`` (how both flows name task runs)."""
    return stage.with_options(task_run_name=f"{stage.name}-{ticker}")
