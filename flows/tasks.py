"""Every task of both flows, each one plain function of the package declared once. Retries
live in the package (one policy per I/O boundary: ``data.retries`` for Yahoo Finance,
``tracking.max_retries`` for MLflow), so no task here retries; policy (where training starts,
what is served, register only if fresh...) lives in ``stockcast.pipeline``."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectConcurrentFuture, PrefectFuture
from prefect.utilities.annotations import opaque

from stockcast import pipeline
from stockcast.config import DataConfig
from stockcast.data.cache import commit_to_cache
from stockcast.data.freshness import check_freshness
from stockcast.data.schemas import ValidatedPrices, validate_prices
from stockcast.data.sources import Prefetched, load_prices, prefetch_yahoo
from stockcast.evaluation.scorecard import evaluate_model
from stockcast.modeling.global_fit import refit_global
from stockcast.registry.store import MlflowStore
from stockcast.registry.tracking import log_training_run

# Every task is side-effecting or takes frames/models: never cache on inputs.
ingest_task = task(load_prices, name="ingest", cache_policy=NO_CACHE)
validate_task = task(validate_prices, name="validate", cache_policy=NO_CACHE)
freshness_task = task(check_freshness, name="freshness", cache_policy=NO_CACHE)

# The training flow's stages, in pipeline order.
warm_start_task = task(pipeline.warm_start, name="warm-start", cache_policy=NO_CACHE)
fit_task = task(pipeline.fit, name="fit", cache_policy=NO_CACHE)
evaluate_task = task(evaluate_model, name="evaluate", cache_policy=NO_CACHE)
refit_task = task(pipeline.serve, name="refit", cache_policy=NO_CACHE)
track_task = task(log_training_run, name="track", cache_policy=NO_CACHE)
register_task = task(pipeline.register, name="register", cache_policy=NO_CACHE)
promote_task = task(pipeline.promote, name="promote", cache_policy=NO_CACHE)
figures_task = task(pipeline.figures, name="figures", cache_policy=NO_CACHE)
# A global model (model.scope: global): one fit for every ticker, then each ticker's share.
fit_global_task = task(pipeline.fit_shared, name="fit-global", task_run_name="fit-global",
                       cache_policy=NO_CACHE)
refit_global_task = task(refit_global, name="refit-global", task_run_name="refit-global",
                         cache_policy=NO_CACHE)
pick_fit_task = task(pipeline.ticker_share, name="fit", cache_policy=NO_CACHE)
serve_shared_task = task(pipeline.serve_shared, name="refit", cache_policy=NO_CACHE)


@task(name="connect-tracking", task_run_name="connect-tracking", cache_policy=NO_CACHE)
def connect_task(store: MlflowStore) -> str:
    """Open (create, repair, upgrade) the store and its experiment once, before any ticker."""
    return store.experiment_id()


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


def upstream(value):
    """``value`` with each upstream future of the thread runner (alone, or in a dict) marked
    ``opaque``: Prefect still waits for it, records the dependency and passes its result, but
    neither reads its state from the API when the task is submitted (to find "parent" runs:
    about 17 reads a ticker, each retried with backoffs adding up to a minute while the server
    is slow) nor walks the result's contents looking for more futures. Dask's futures stay as
    they are: prefect-dask 0.3.7 passes an opaque one on unresolved."""
    if isinstance(value, PrefectConcurrentFuture):
        return opaque(value)
    if isinstance(value, dict):
        return {k: upstream(v) for k, v in value.items()}
    return value


def submit_for(stage, ticker: str, *args, **kwargs) -> PrefectFuture:
    """Submit ``stage`` as ``<stage>-<TICKER>`` with its upstream results passed as they are
    (``upstream``); ``wait_for`` stays a list of futures to wait on."""
    wait_for = kwargs.pop("wait_for", None)
    return for_ticker(stage, ticker).submit(
        *(upstream(a) for a in args), **{k: upstream(v) for k, v in kwargs.items()},
        wait_for=wait_for)
