"""Tasks both flows share, with their orchestration policies."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from stockcast import pipeline
from stockcast.config import PipelineConfig
from stockcast.ingest import load_prices

# Every task is side-effecting or takes frames/models: never cache on inputs.
ingest_task = task(load_prices, name="ingest", cache_policy=NO_CACHE)
validate_task = task(pipeline.validate_stage, name="validate", cache_policy=NO_CACHE, retries=0)


def _retry_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:
        return bool(getattr(exc, "transient", False))
    return False


def ingest_for(cfg: PipelineConfig):
    """The ingest task with the configured retry policy, for transient failures only: an
    unknown ticker or a bad file will not get better. No Prefect timeout: it cannot interrupt
    a thread; ``data.request_timeout_seconds`` bounds each Yahoo Finance request instead."""
    o = cfg.orchestration
    return ingest_task.with_options(retries=o.ingest_retries,
                                    retry_delay_seconds=o.ingest_retry_delay_seconds,
                                    retry_condition_fn=_retry_transient)
