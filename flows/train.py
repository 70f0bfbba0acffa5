"""The nightly training flow: per ticker, ingest -> validate -> window -> train -> evaluate ->
track -> register -> promote. Tickers run concurrently; one ticker's failure does not stop
the others, and the flow ends Failed naming every ticker that failed and why."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from flows.tasks import ingest_for, validate_task
from stockcast import pipeline, tracking
from stockcast.config import PipelineConfig
from stockcast.dataset import prepare_windows
from stockcast.errors import PipelineFailed
from stockcast.report import build_report
from stockcast.runtime import resolve_runtime, threads_per_training
from stockcast.train import train_model

# Every task is side-effecting or takes frames/models: never cache on inputs.
evaluate_task = task(pipeline.evaluate_stage, name="evaluate", cache_policy=NO_CACHE)
register_task = task(pipeline.register_stage, name="register", cache_policy=NO_CACHE)
promote_task = task(pipeline.promote_stage, name="promote", cache_policy=NO_CACHE)


@task(name="connect-tracking", cache_policy=NO_CACHE)
def connect_task(cfg: PipelineConfig) -> str:
    """Fail fast, before any training, when the MLflow store cannot be reached."""
    return tracking.configure_tracking(cfg.tracking.tracking_uri, cfg.tracking.experiment,
                                       cfg.tracking.max_retries)


@task(name="window", cache_policy=NO_CACHE)
def window_task(checked, cfg: PipelineConfig):
    """Split, scale (train rows only) and window the validated frame."""
    return prepare_windows(checked[0], cfg.window, cfg.model)


@task(name="train", cache_policy=NO_CACHE)
def train_task(data, cfg: PipelineConfig):
    """Fit the LSTM on the prepared windows (no files, no MLflow)."""
    return train_model(data.x["train"], data.y["train"], data.x["val"], data.y["val"],
                       cfg.model, cfg.train)


@task(name="report", cache_policy=NO_CACHE)
def report_task(checked, ticker: str, out_dir: Path, cfg: PipelineConfig):
    """The exploratory data report (figures + summary) for the run's artifacts."""
    return build_report(checked[0], ticker, out_dir, cfg.window)


@task(name="track", cache_policy=NO_CACHE)
def track_task(prices, checked, data, result, evaluation, cfg: PipelineConfig, tracking_uri: str,
               eda=None):
    """Log the run, its model and the data report to MLflow."""
    extra = {"eda": eda.directory} if eda is not None else None
    return pipeline.track_stage(prices, checked[1], data, result, evaluation, cfg, tracking_uri,
                                extra)


def task_runner_for(cfg: PipelineConfig) -> Any:
    """Threads by default; Dask (an existing cluster or a local one) to scale out."""
    orch = cfg.orchestration
    if orch.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if orch.dask_address:
            return DaskTaskRunner(address=orch.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": orch.max_workers,
                                              "threads_per_worker": 1, "processes": True})
    return ThreadPoolTaskRunner(max_workers=orch.max_workers)


def _submit_ticker(ticker: str, cfg: PipelineConfig, tracking_uri: str, work_dir: Path):
    prices = ingest_for(cfg).submit(ticker, cfg.data)
    checked = validate_task.submit(prices, cfg)
    data = window_task.submit(checked, cfg)
    result = train_task.submit(data, cfg)
    evaluation = evaluate_task.submit(result, data, ticker, work_dir / ticker)
    # Plotting after training: on a small CPU, drawing while training slows both down.
    eda = report_task.submit(checked, ticker, work_dir / ticker / "eda", cfg, wait_for=[result])
    logged = track_task.submit(prices, checked, data, result, evaluation, cfg, tracking_uri, eda)
    version = register_task.submit(logged, ticker, cfg, tracking_uri)
    decision = promote_task.submit(version, ticker, data, evaluation, cfg, tracking_uri)
    # In pipeline order: the first failed one names the root cause.
    return {"prices": prices, "checked": checked, "data": data, "result": result,
            "evaluation": evaluation, "eda": eda, "logged": logged, "version": version,
            "decision": decision}


@flow(name="train-pipeline", log_prints=True)
def train_pipeline(
    tickers: list[str] | None = None,
    config: PipelineConfig | None = None,
    tracking_uri: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Train, evaluate, track and (maybe) promote a model for every ticker."""
    cfg = config or PipelineConfig()
    if tickers:
        cfg = cfg.model_copy(update={"tickers": tuple(t.strip().upper() for t in tickers)})
    cfg = threads_per_training(resolve_runtime(cfg, tracking_uri))
    if cfg.orchestration.task_runner == "dask":
        # The runner is fixed per flow: run the tickers in a subflow on Dask.
        dask_flow = train_tickers.with_options(task_runner=task_runner_for(cfg))
        return dask_flow(cfg)
    return _train_tickers(cfg)


@flow(name="train-tickers")
def train_tickers(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """The per-ticker fan-out on a configurable task runner (Dask for scale-out)."""
    return _train_tickers(cfg)


def _train_tickers(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    uri = cfg.tracking.tracking_uri
    logger = get_run_logger()
    logger.info("training %s; MLflow at %s", ", ".join(cfg.tickers), uri)
    connect_task(cfg)
    with tempfile.TemporaryDirectory(prefix="stockcast-") as tmp:
        futures = {t: _submit_ticker(t, cfg, uri, Path(tmp)) for t in cfg.tickers}
        wait([f for fs in futures.values() for f in fs.values()])
        summary: dict[str, dict[str, Any]] = {}
        failures: dict[str, str] = {}
        for ticker, fs in futures.items():
            try:
                decision = fs["decision"].result()
                evaluation = fs["evaluation"].result()
                prices = fs["prices"].result()
            except Exception as exc:  # the first failing stage's error for this ticker
                failures[ticker] = _first_error(fs, exc)
                logger.error("%s failed: %s", ticker, failures[ticker])
                continue
            summary[ticker] = {
                "version": fs["version"].result(),
                "run_id": fs["logged"].result().run_id,
                "promoted": decision.promote,
                "reason": decision.reason,
                "source": prices.source,
                **{k: evaluation.metrics[k] for k in ("test_rmse", "naive_rmse", "skill_rmse")},
            }
            logger.info("%s: v%s source=%s test_rmse=%.4f naive_rmse=%.4f skill=%.4f; %s",
                        ticker, summary[ticker]["version"], prices.source,
                        evaluation.metrics["test_rmse"], evaluation.metrics["naive_rmse"],
                        evaluation.metrics["skill_rmse"], decision.reason)
    if failures:
        detail = "\n".join(f"  - {t}: {msg}" for t, msg in failures.items())
        ok = ", ".join(summary) or "none"
        raise PipelineFailed(f"{len(failures)} of {len(cfg.tickers)} ticker(s) failed "
                             f"(succeeded: {ok}):\n{detail}", summary, failures)
    return summary


def _first_error(futures: dict, fallback: Exception) -> str:
    # Upstream failures surface downstream as "upstream task failed": find the root cause.
    for future in futures.values():
        state = future.state
        if state.is_failed() or state.is_crashed():
            try:
                state.result()
            except Exception as exc:
                if "upstream" not in str(exc).lower():
                    return f"{type(exc).__name__}: {exc}"
    return f"{type(fallback).__name__}: {fallback}"

