"""The nightly training flow. Per ticker:

    ingest -> validate -> freshness -> commit cache -> warm-start -> fit (window, train,
    calibrate) -> evaluate -> refit -> track -> register -> promote -> figures

With ``model.scope: global`` one ``fit-global`` task trains a network for all tickers (after
every ticker's data stages), and each ticker's ``fit`` / ``refit`` pick its share.

Tickers run concurrently; one ticker's failure does not stop the others, and the flow ends
Failed naming every ticker that failed and the stage where it did. This module only wires:
``run_ticker`` submits the stages in pipeline order; each task is one function of
``stockcast.pipeline`` (``flows/tasks.py``), the waves and root causes are ``flows/fanout.py``,
and what a ticker ended with renders itself (``stockcast.ticker_outcome``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.exceptions import TerminationSignal
from prefect.futures import PrefectFuture
from prefect.runtime import deployment

from flows.fanout import Front, Shared, TickerRun, submit_all
from flows.notify import notify_failure
from flows.observe import (
    end_never_run,
    project_logs_in_prefect,
    publish_markdown,
    publish_table,
    publish_warning,
)
from flows.tasks import (
    connect_task,
    evaluate_task,
    figures_task,
    fit_task,
    pick_fit_task,
    promote_task,
    refit_task,
    register_task,
    serve_shared_task,
    submit_for,
    track_task,
    warm_start_task,
)
from stockcast import pipeline
from stockcast.config import PipelineConfig
from stockcast.errors import PipelineFailed
from stockcast.modeling.adaptive import Tracking
from stockcast.registry.store import MlflowStore
from stockcast.runtime import (
    ORCHESTRATION_CORES,
    path_inside,
    resolve_runtime,
    threads_per_training,
)
from stockcast.server_guard import guard_temporary_server
from stockcast.stopping import trainings_stop_on
from stockcast.ticker_outcome import (
    TickerOutcome,
    data_warnings,
    decisions_markdown,
    summary_rows,
)


def run_ticker(ticker: str, cfg: PipelineConfig, store: MlflowStore, work_dir: Path,
               front: Front, shared: Shared | None = None) -> TickerRun:
    """Submit one ticker's model stages after its data stages, in pipeline order."""

    def submit(stage, *args, **kwargs) -> PrefectFuture:
        return submit_for(stage, ticker, *args, **kwargs)

    validated, freshness = front.validated, front.freshness
    # Freshness is decided before any training: stale prices under on_stale: fail stop here.
    start = submit(warm_start_task, ticker, cfg, store, wait_for=[freshness]) if (
        shared is None) else None
    fit = (submit(fit_task, validated, cfg, start) if shared is None else
           submit(pick_fit_task, shared.fits, ticker, wait_for=[validated, freshness]))
    evaluation = submit(evaluate_task, fit, ticker, cfg.promotion.alpha,
                        Tracking.from_config(cfg.intervals),
                        pipeline.walk_forward(cfg, store, ticker))
    serving = (submit(refit_task, fit, evaluation, cfg) if shared is None else
               submit(serve_shared_task, fit, evaluation, shared.refits, ticker, cfg))
    logged = submit(track_task, validated, fit, evaluation, serving, cfg, store)
    version = submit(register_task, logged, ticker, cfg, store, freshness)
    decision = submit(promote_task, version, evaluation, fit, ticker, cfg, store, freshness)
    figures = submit(figures_task, decision, logged, validated, fit, evaluation, cfg, store,
                     path_inside(work_dir, ticker))
    return TickerRun(prices=front.prices, validated=validated, freshness=freshness,
                     cached=front.cached, start=start, fit=fit, evaluation=evaluation,
                     serving=serving, logged=logged, version=version, decision=decision,
                     figures=figures)


def outcome_of(run: TickerRun) -> TickerOutcome:
    """What a ticker whose every stage completed ended with."""
    figures = (run.figures.result() if run.figures.state.is_completed()
               else "failed (see the Prefect run logs)")
    return TickerOutcome.of(
        prices=run.prices.result(), freshness=run.freshness.result(), fit=run.fit.result(),
        evaluation=run.evaluation.result(), serving=run.serving.result(),
        logged=run.logged.result(), version=run.version.result(),
        decision=run.decision.result(), figures=figures)


def task_runner_for(cfg: PipelineConfig) -> Any:
    """The Dask runner (``orchestration.task_runner: dask``): an existing cluster, or a local
    one. The thread path runs on the flow's own runner, whose pool is fixed when the flow is
    defined, so ``max_workers`` bounds its trainings with training slots instead."""
    from prefect_dask import DaskTaskRunner

    orch = cfg.orchestration
    if orch.dask_address:
        return DaskTaskRunner(address=orch.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": orch.max_workers,
                                          "threads_per_worker": 1, "processes": True,
                                          "dashboard_address": orch.dask_dashboard_address})


@flow(name="train-pipeline", log_prints=True, on_failure=[notify_failure],
      on_crashed=[notify_failure])
def train_pipeline(
    tickers: list[str] | None = None,
    config: PipelineConfig | None = None,
    tracking_uri: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Train, evaluate, track and (maybe) promote a model for every ticker."""
    cfg = (config or PipelineConfig()).with_tickers(tickers)
    cfg = threads_per_training(resolve_runtime(cfg, tracking_uri), ORCHESTRATION_CORES)
    guard_temporary_server()  # a killed run takes its temporary Prefect server with it
    # SIGTERM (a cancellation, a supervisor) reaches this thread as Prefect's TerminationSignal.
    with project_logs_in_prefect(), trainings_stop_on(TerminationSignal):
        if cfg.orchestration.task_runner == "dask":
            # The runner is fixed per flow: run the tickers in a subflow on Dask.
            return train_tickers.with_options(task_runner=task_runner_for(cfg))(cfg)
        return _train_tickers(cfg)


@flow(name="train-tickers")
def train_tickers(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """The per-ticker fan-out on a configurable task runner (Dask for scale-out)."""
    return _train_tickers(cfg)


def _publish(cfg: PipelineConfig, outcomes: dict[str, TickerOutcome],
             failures: dict[str, str]) -> None:
    publish_table("train-summary", summary_rows(cfg.tickers, outcomes, failures),
                  "stockcast training run: per ticker, the data used, metrics against the "
                  "baselines, the registered version and the promotion decision")
    publish_markdown("train-decisions", decisions_markdown(cfg.tickers, outcomes, failures),
                     "stockcast training run: each ticker's decision and forecaster, in full")
    warnings = data_warnings(outcomes)
    if warnings:
        publish_warning("train-warnings", "\n".join(
            ["# stockcast: data warnings", "", *(f"- {w}" for w in warnings)]))


def _train_tickers(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    store = MlflowStore.from_config(cfg.tracking)
    logger = get_run_logger()
    logger.info("training %s; MLflow at %s", ", ".join(cfg.tickers), store.tracking_uri)
    connect_task(store)
    outcomes: dict[str, TickerOutcome] = {}
    failures: dict[str, str] = {}
    scheduled = deployment.id is not None  # a deployment run (scheduled or triggered)
    with tempfile.TemporaryDirectory(prefix="stockcast-") as tmp:
        runs = submit_all(cfg, store, Path(tmp), scheduled, run_ticker)
        never_run = []
        for ticker, run in runs.items():
            if not (isinstance(run, TickerRun) and run.decision.state.is_completed()):
                failures[ticker] = run.root_cause()
                logger.error("%s failed at %s", ticker, failures[ticker])
                why = f"not run: {ticker} failed at {failures[ticker].splitlines()[0]}"
                never_run += [(f, ticker, why[:300]) for f in run.all() if f.state.is_pending()]
                continue
            outcomes[ticker] = outcome_of(run)
            logger.info("%s", outcomes[ticker].console_line(ticker))
    end_never_run(never_run)
    _publish(cfg, outcomes, failures)
    summary = {t: o.as_dict() for t, o in outcomes.items()}
    if failures:
        detail = "\n".join(f"  - {t}: {msg}" for t, msg in failures.items())
        ok = ", ".join(summary) or "none"
        raise PipelineFailed(f"{len(failures)} of {len(cfg.tickers)} ticker(s) failed "
                             f"(succeeded: {ok}):\n{detail}", summary, failures)
    return summary
