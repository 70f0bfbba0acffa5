"""Tasks both flows share. Each task calls one plain function of the package; retries live in
the package (one policy per I/O boundary: ``data.retries`` for Yahoo Finance,
``tracking.max_retries`` for MLflow), so no task here retries."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from stockcast.data.cache import commit_to_cache
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import load_prices

# Every task is side-effecting or takes frames/models: never cache on inputs.
ingest_task = task(load_prices, name="ingest", cache_policy=NO_CACHE)
validate_task = task(validate_prices, name="validate", cache_policy=NO_CACHE)
commit_cache_task = task(commit_to_cache, name="commit-cache", cache_policy=NO_CACHE)
