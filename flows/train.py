"""The nightly training flow. Per ticker:

    ingest -> validate -> freshness -> commit cache -> fit (window, train, calibrate)
    -> evaluate -> refit -> track -> register -> promote -> figures

With ``model.scope: global`` one ``fit-global`` task trains a network for all tickers (after
every ticker's data stages), and each ticker's ``fit`` / ``refit`` pick its share.

Tickers run concurrently; one ticker's failure does not stop the others, and the flow ends
Failed naming every ticker that failed and the stage where it did. Each task calls one plain
function of the package; ``run_ticker`` wires them in pipeline order.
"""

from __future__ import annotations

import tempfile
import threading
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import UpstreamTaskError
from prefect.futures import PrefectFuture, wait
from prefect.runtime import deployment

from flows.notify import notify_failure
from flows.observe import (
    end_never_run,
    project_logs_in_prefect,
    publish_markdown,
    publish_table,
    publish_warning,
)
from flows.tasks import (
    commit_cache_task,
    download_task,
    for_ticker,
    freshness_task,
    ingest_task,
    validate_task,
)
from stockcast.config import PipelineConfig
from stockcast.data.freshness import Freshness
from stockcast.data.loading import bundled_samples
from stockcast.data.schemas import ValidatedPrices
from stockcast.errors import PipelineFailed
from stockcast.evaluation.earlier_folds import WalkForward
from stockcast.evaluation.scorecard import Evaluation, evaluate_model
from stockcast.modeling import slots
from stockcast.modeling.adaptive import Tracking
from stockcast.modeling.global_fit import fit_global, refit_global
from stockcast.modeling.recipe import (
    ServingFit,
    TickerFit,
    WarmStart,
    epochs_for,
    fit_and_calibrate,
    fit_for_serving,
)
from stockcast.progress import EpochProgress
from stockcast.registry.decision_record import headline
from stockcast.registry.promotion import Decision, promote_if_better
from stockcast.registry.run_figures import figures_wanted, log_run_figures
from stockcast.registry.store import MlflowStore
from stockcast.registry.tracking import LoggedRun, log_training_run
from stockcast.registry.versions import model_name, register_version
from stockcast.registry.warm_start import champion_start
from stockcast.runtime import path_inside, resolve_runtime, threads_per_training
from stockcast.server_guard import guard_temporary_server
from stockcast.stopping import training_stops_on_sigterm

SUMMARY_METRICS = ("test_rmse", "naive_rmse", "skill_rmse", "skill_rmse_pct", "dm_pvalue_naive",
                   "test_coverage_95", "test_interval_score_95", "ewma_interval_score_95",
                   "garch_interval_score_95", "dm_pvalue_is95_garch", "har_interval_score_95",
                   "dm_pvalue_is95_har")

def training_slot(cfg: PipelineConfig) -> threading.BoundedSemaphore:
    """The process's semaphore for ``cfg.orchestration.max_workers`` concurrent trainings."""
    return slots.training_slot(cfg.orchestration.max_workers)


# Every task is side-effecting or takes frames/models: never cache on inputs.
evaluate_task = task(evaluate_model, name="evaluate", cache_policy=NO_CACHE)
track_task = task(log_training_run, name="track", cache_policy=NO_CACHE)


@task(name="connect-tracking", task_run_name="connect-tracking", cache_policy=NO_CACHE)
def connect_task(store: MlflowStore) -> str:
    """Open (create, repair, upgrade) the store and its experiment once, before any ticker."""
    return store.experiment_id()


@task(name="warm-start", cache_policy=NO_CACHE)
def warm_start_task(ticker: str, cfg: PipelineConfig, store: MlflowStore) -> WarmStart:
    """Where tonight's fit starts: the champion's evaluation-fit weights when the settings
    match, else scratch; the reason is logged either way (never fatal: scratch works)."""
    key = cfg.tracking.model_key.get_secret_value() if cfg.tracking.model_key else None
    try:
        start = champion_start(model_name(cfg.tracking.model_name_prefix, ticker), cfg, store, key)
    except Exception as exc:  # reading the champion failed: train cold, and say why
        start = WarmStart(None, f"scratch: the champion could not be read ({exc})"[:300])
    get_run_logger().info("%s: training starts from %s", ticker, start.source)
    return start


@task(name="fit", cache_policy=NO_CACHE)
def fit_task(validated: ValidatedPrices, cfg: PipelineConfig,
             start: WarmStart | None = None) -> TickerFit:
    """Window (scaler fit on train rows only), train with early stopping (from ``start``'s
    weights when given), calibrate the intervals on the validation span (no files, no MLflow)."""
    progress = (EpochProgress(validated.ticker, epochs_for(cfg.train, start))
                if cfg.train.progress else None)
    with training_slot(cfg):
        return fit_and_calibrate(validated.frame, cfg.window, cfg.model, cfg.train, progress,
                                 start)


@task(name="refit", cache_policy=NO_CACHE)
def refit_task(fit: TickerFit, evaluation: Evaluation, cfg: PipelineConfig) -> ServingFit:
    """The forecaster to serve, refit through the last date (``train.refit``): the LSTM, or
    the volatility baseline the evaluation found significantly better."""
    if evaluation.choice.is_lstm:
        with training_slot(cfg):
            return fit_for_serving(fit, cfg.model, cfg.train)
    get_run_logger().warning("%s", evaluation.choice.reason)
    return fit_for_serving(fit, cfg.model, cfg.train, evaluation.evaluated)


@task(name="register", cache_policy=NO_CACHE)
def register_task(logged: LoggedRun, ticker: str, cfg: PipelineConfig, store: MlflowStore,
                  freshness: Freshness) -> str | None:
    """Register the run's model as a new version of the ticker's registered model (not when
    the prices are stale and ``data.on_stale`` is warn)."""
    if not freshness.registrable:
        return None
    return register_version(logged.model_uri, logged.run_id,
                            model_name(cfg.tracking.model_name_prefix, ticker), store)


@task(name="promote", cache_policy=NO_CACHE)
def promote_task(version: str | None, evaluation: Evaluation, fit: TickerFit, ticker: str,
                 cfg: PipelineConfig, store: MlflowStore, freshness: Freshness) -> Decision:
    """Move `champion` only on significant out-of-sample evidence; record why."""
    if version is None:
        return Decision(False, f"not registered: {freshness.reason}")
    key = cfg.tracking.model_key.get_secret_value() if cfg.tracking.model_key else None
    return promote_if_better(version, model_name(cfg.tracking.model_name_prefix, ticker),
                             evaluation, fit.data.frame, cfg.promotion, store, key,
                             WalkForward.of(cfg))


@task(name="figures", cache_policy=NO_CACHE)
def figures_task(decision: Decision, logged: LoggedRun, validated: ValidatedPrices,
                 fit: TickerFit, evaluation: Evaluation, cfg: PipelineConfig,
                 store: MlflowStore, out_dir: Path) -> str:
    """The run's figures, added to it after the decision (``tracking.figures``: the promoted
    runs by default). Never fatal: the version and its decision stand; a failure is a
    warning in the logs and on the run's ``figures`` tag."""
    wanted, status = figures_wanted(cfg.tracking.figures, decision.promote)
    if wanted:
        try:
            log_run_figures(logged.run_id, validated, fit, evaluation, cfg, store, out_dir)
        except Exception as exc:  # noqa: BLE001 - a figure is not worth the night
            status = f"failed: {type(exc).__name__}: {exc}"[:300]
            get_run_logger().warning("%s: figures %s", validated.ticker, status)
    store.call("tagging figures", lambda: store.client.set_tag(logged.run_id, "figures", status))
    return status


class _Stages:
    """Futures in pipeline order (the first failed one is the root cause)."""

    def all(self) -> list[PrefectFuture]:
        """Every future submitted, in pipeline order."""
        return [getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None]

    def complete(self) -> bool:
        """Whether every stage completed."""
        return all(f.state.is_completed() for f in self.all())

    def root_cause(self) -> str:
        """The first failed stage and its error; stages that never ran because an upstream
        stage failed are skipped by type (Prefect leaves them NotReady)."""
        for f in fields(self):
            if getattr(self, f.name) is None:  # never submitted: an earlier stage failed
                continue
            state = getattr(self, f.name).state
            if not (state.is_failed() or state.is_crashed()):
                continue
            exc = state.result(raise_on_failure=False)
            if isinstance(exc, BaseException) and not isinstance(exc, UpstreamTaskError):
                return f"{f.name}: {type(exc).__name__}: {exc}"
        return "did not complete (see the Prefect run logs)"


@dataclass(frozen=True)
class TickerRun(_Stages):
    """One ticker's task futures, in pipeline order."""

    prices: PrefectFuture
    validated: PrefectFuture
    freshness: PrefectFuture
    cached: PrefectFuture
    start: PrefectFuture | None
    fit: PrefectFuture
    evaluation: PrefectFuture
    serving: PrefectFuture
    logged: PrefectFuture
    version: PrefectFuture
    decision: PrefectFuture
    figures: PrefectFuture


@dataclass(frozen=True)
class Shared:
    """A global model's futures: the evaluation fits and the serving refits, per ticker."""

    fits: PrefectFuture
    refits: PrefectFuture


@task(name="fit-global", task_run_name="fit-global", cache_policy=NO_CACHE)
def fit_global_task(validated: dict[str, ValidatedPrices], cfg: PipelineConfig
                    ) -> dict[str, TickerFit]:
    """One network on the windows of every ticker and bundled sample; per-ticker calibration."""
    extra = bundled_samples(cfg.window, cfg.validation, skip=tuple(validated))
    logger = get_run_logger()
    logger.info("global model: training on %s", ", ".join([*validated, *extra]))
    fits = fit_global({t: v.frame for t, v in validated.items()},
                      {t: v.frame for t, v in extra.items()}, cfg.window, cfg.model, cfg.train)
    for ticker, fit in fits.items():
        if fit.note:
            logger.warning("%s: %s", ticker, fit.note)
    return fits


@task(name="refit-global", task_run_name="refit-global", cache_policy=NO_CACHE)
def refit_global_task(fits: dict[str, TickerFit], cfg: PipelineConfig) -> dict[str, ServingFit]:
    """The global network refit through the last date of every ticker (``train.refit``)."""
    return refit_global(fits, cfg.model, cfg.train)


@task(name="fit", cache_policy=NO_CACHE)
def pick_fit_task(fits: dict[str, TickerFit], ticker: str) -> TickerFit:
    """This ticker's calibrated view of the global model."""
    return fits[ticker]


@task(name="refit", cache_policy=NO_CACHE)
def serve_shared_task(fit: TickerFit, evaluation: Evaluation, refits: dict[str, ServingFit],
                      ticker: str, cfg: PipelineConfig) -> ServingFit:
    """The ticker's served forecaster: the refit global network, or the better baseline."""
    if evaluation.choice.is_lstm:
        return refits[ticker]
    get_run_logger().warning("%s", evaluation.choice.reason)
    return fit_for_serving(fit, cfg.model, cfg.train, evaluation.evaluated)


@dataclass(frozen=True)
class Front(_Stages):
    """A ticker's data stages: the model stages are submitted only once these passed, so a
    ticker without data fails once, at its data, with no cascade of tasks that never ran."""

    prices: PrefectFuture
    validated: PrefectFuture | None = None
    freshness: PrefectFuture | None = None
    cached: PrefectFuture | None = None


def submit_fronts(tickers: tuple[str, ...], cfg: PipelineConfig,
                  scheduled: bool) -> dict[str, Front]:
    """Every ticker's data stages, finished: ingest first, and the checks only for the tickers
    whose prices arrived (an unknown ticker fails once, at ingest). Yahoo downloads of the
    wave run at once first (``download``), each ticker keeping its own result or error."""
    batched = cfg.data.source in ("auto", "yfinance") and len(tickers) > 1
    downloads = download_task(tickers, cfg.data) if batched else {}
    prices = {t: for_ticker(ingest_task, t).submit(t, cfg.data, prefetched=downloads.get(t))
              for t in tickers}
    wait(list(prices.values()))
    fronts = {t: submit_front(t, p, cfg, scheduled) if p.state.is_completed() else Front(p)
              for t, p in prices.items()}
    wait([f for front in fronts.values() for f in front.all()])
    return fronts


def submit_front(ticker: str, prices: PrefectFuture, cfg: PipelineConfig,
                 scheduled: bool) -> Front:
    """Validate, decide freshness and commit the cache (task runs ``<stage>-<T>``)."""
    validated = for_ticker(validate_task, ticker).submit(
        prices, cfg.window, cfg.validation, cfg.data.data_dir / "reports")
    freshness = for_ticker(freshness_task, ticker).submit(validated, cfg.data, scheduled)
    cached = for_ticker(commit_cache_task, ticker).submit(validated, cfg.data.data_dir)
    return Front(prices, validated, freshness, cached)


def submit_shared(fronts: dict[str, Front], cfg: PipelineConfig) -> Shared:
    """``model.scope: global``: one fit over the tickers whose data passed."""
    usable = {t: front.validated for t, front in fronts.items()}
    fits = fit_global_task.submit(usable, cfg)
    return Shared(fits, refit_global_task.submit(fits, cfg))


def run_ticker(ticker: str, cfg: PipelineConfig, store: MlflowStore, work_dir: Path,
               front: Front, shared: Shared | None = None) -> TickerRun:
    """Submit one ticker's model stages after its data stages, in pipeline order."""

    def submit(stage, *args, **kwargs) -> PrefectFuture:
        return for_ticker(stage, ticker).submit(*args, **kwargs)

    validated, freshness = front.validated, front.freshness
    # Freshness is decided before any training: stale prices under on_stale: fail stop here.
    start = submit(warm_start_task, ticker, cfg, store, wait_for=[freshness]) if (
        shared is None) else None
    fit = (submit(fit_task, validated, cfg, start) if shared is None else
           submit(pick_fit_task, shared.fits, ticker, wait_for=[validated, freshness]))
    out = path_inside(work_dir, ticker)
    evaluation = submit(evaluate_task, fit, ticker, cfg.promotion.alpha,
                        Tracking.from_config(cfg.intervals),
                        WalkForward.of(cfg))
    serving = (submit(refit_task, fit, evaluation, cfg) if shared is None else
               submit(serve_shared_task, fit, evaluation, shared.refits, ticker, cfg))
    logged = submit(track_task, validated, fit, evaluation, serving, cfg, store)
    version = submit(register_task, logged, ticker, cfg, store, freshness)
    decision = submit(promote_task, version, evaluation, fit, ticker, cfg, store, freshness)
    figures = submit(figures_task, decision, logged, validated, fit, evaluation, cfg, store, out)
    return TickerRun(prices=front.prices, validated=validated, freshness=freshness,
                     cached=front.cached, start=start, fit=fit, evaluation=evaluation,
                     serving=serving, logged=logged, version=version, decision=decision,
                     figures=figures)


def waves(tickers: tuple[str, ...], size: int) -> list[tuple[str, ...]]:
    """The tickers in consecutive groups of ``size``: what is in flight stays bounded (300
    tickers submitted at once held thousands of threads)."""
    return [tickers[i:i + size] for i in range(0, len(tickers), size)]


def submit_all(cfg: PipelineConfig, store: MlflowStore, work_dir: Path,
               scheduled: bool) -> dict[str, TickerRun | Front]:
    """Every ticker's pipeline, in waves of four times ``orchestration.max_workers`` tickers
    (enough to keep the task runner busy, few enough to bound what is in flight), all
    finished. Two waves overlap: a wave's data stages and trainings start while the wave
    before it finishes its evaluation and tracking, so the cores do not idle at each wave's
    tail; the wave before that has ended. A ticker whose data stages failed keeps its
    ``Front`` only. A global model: every ticker's data stages in waves, then one fit over
    those that passed."""
    size = 4 * max(1, cfg.orchestration.max_workers)
    runs: dict[str, TickerRun | Front] = {}
    fronts: dict[str, Front] = {}
    in_flight: list[PrefectFuture] = []
    for wave in waves(cfg.tickers, size):
        batch = submit_fronts(wave, cfg, scheduled)
        runs |= {t: front for t, front in batch.items() if not front.complete()}
        passed = {t: front for t, front in batch.items() if front.complete()}
        if cfg.model.scope == "global":
            fronts |= passed
            continue
        models = {t: run_ticker(t, cfg, store, work_dir, front) for t, front in passed.items()}
        wait(in_flight)  # the previous wave: at most two in flight
        in_flight = [f for run in models.values() for f in run.all()]
        runs |= models
    wait(in_flight)
    if fronts:
        shared = submit_shared(fronts, cfg)
        models = {t: run_ticker(t, cfg, store, work_dir, front, shared)
                  for t, front in fronts.items()}
        wait([f for run in models.values() for f in run.all()])
        runs |= models
    return {t: runs[t] for t in cfg.tickers}


def task_runner_for(cfg: PipelineConfig) -> Any:
    """The Dask runner (``orchestration.task_runner: dask``): an existing cluster, or a local
    one. The thread path runs on the flow's own runner, whose pool is fixed when the flow is
    defined, so ``max_workers`` bounds its trainings with ``training_slot`` instead."""
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
    cfg = threads_per_training(resolve_runtime(cfg, tracking_uri))
    guard_temporary_server()  # a killed run takes its temporary Prefect server with it
    with project_logs_in_prefect(), training_stops_on_sigterm():
        if cfg.orchestration.task_runner == "dask":
            # The runner is fixed per flow: run the tickers in a subflow on Dask.
            return train_tickers.with_options(task_runner=task_runner_for(cfg))(cfg)
        return _train_tickers(cfg)


@flow(name="train-tickers")
def train_tickers(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """The per-ticker fan-out on a configurable task runner (Dask for scale-out)."""
    return _train_tickers(cfg)


def _summary(run: TickerRun) -> dict[str, Any]:
    evaluation, decision, prices = (run.evaluation.result(), run.decision.result(),
                                    run.prices.result())
    freshness, serving = run.freshness.result(), run.serving.result()
    result = run.fit.result().result
    return {
        "version": run.version.result(),
        "run_id": run.logged.result().run_id,
        "promoted": decision.promote,
        "reason": decision.reason,
        "decision": headline(decision, serves=evaluation.choice.tag),
        "source": prices.source,
        "fallback": " | ".join(prices.notes) or "none",
        "last_date": freshness.last_date,
        "fresh": not freshness.stale,
        "pvalue": decision.pvalue,
        "champion_version": decision.champion_version,
        **{k: evaluation.metrics[k] for k in SUMMARY_METRICS},
        "train_seconds": result.seconds + serving.seconds,
        "forecaster": evaluation.choice.tag,
        "forecaster_reason": evaluation.choice.reason,
        "warm_start_from": run.fit.result().warm_start_from,
        "figures": (run.figures.result() if run.figures.state.is_completed()
                    else "failed (see the Prefect run logs)"),
    }


def _artifact_row(ticker: str, s: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """One ticker's row of ``train-summary``: what was decided and served first (the Prefect
    pane shows the first columns), the decision in the version's own words (its reason in
    full is in ``train-decisions``), then the metrics and the data."""
    if s is None:
        return {"ticker": ticker, "status": "FAILED", "decision": error}
    return {"ticker": ticker, "status": "champion" if s["promoted"] else "not promoted",
            "serves": s["forecaster"], "version": s["version"], "decision": s["decision"],
            "coverage_95": s["test_coverage_95"], "interval_score_95": s["test_interval_score_95"],
            "ewma_interval_score_95": s["ewma_interval_score_95"],
            "garch_interval_score_95": s["garch_interval_score_95"],
            "dm_p_vs_garch": s["dm_pvalue_is95_garch"], "skill_%": s["skill_rmse_pct"],
            "dm_p_vs_persistence": s["dm_pvalue_naive"], "promotion_p": s["pvalue"],
            "source": s["source"], "last_date": s["last_date"], "fallback": s["fallback"]}


def decisions_markdown(tickers: tuple[str, ...], summary: dict, failures: dict) -> str:
    """Per ticker, in full: the promotion decision and which forecaster is served, and why
    (the table's reason column is cut off in the Prefect UI)."""
    lines = ["# stockcast: decisions", ""]
    for ticker in tickers:
        lines.append(f"## {ticker}")
        if ticker in failures:
            lines += ["", f"FAILED: {failures[ticker]}", ""]
            continue
        s = summary[ticker]
        lines += ["", f"- decision: {s['reason']}", f"- forecaster: {s['forecaster_reason']}", ""]
    return "\n".join(lines)


def _publish(cfg: PipelineConfig, summary: dict, failures: dict) -> None:
    rows = [_artifact_row(t, summary.get(t), failures.get(t)) for t in cfg.tickers]
    publish_table("train-summary", rows, "stockcast training run: per ticker, the data used, "
                  "metrics against the baselines, the registered version and the promotion "
                  "decision")
    publish_markdown("train-decisions", decisions_markdown(cfg.tickers, summary, failures),
                     "stockcast training run: each ticker's decision and forecaster, in full")
    stale = [s["reason"] for s in summary.values() if not s["fresh"] and s["version"] is None]
    fallbacks = [f"{t}: {s['fallback']}" for t, s in summary.items() if s["fallback"] != "none"]
    if stale or fallbacks:
        publish_warning("train-warnings", "\n".join(
            ["# stockcast: data warnings", "", *(f"- STALE: {r}" for r in stale),
             *(f"- FALLBACK: {f}" for f in fallbacks)]))


def _train_tickers(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    store = MlflowStore.from_config(cfg.tracking)
    logger = get_run_logger()
    logger.info("training %s; MLflow at %s", ", ".join(cfg.tickers), store.tracking_uri)
    connect_task(store)
    summary: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    scheduled = deployment.id is not None  # a deployment run (scheduled or triggered)
    with tempfile.TemporaryDirectory(prefix="stockcast-") as tmp:
        runs = submit_all(cfg, store, Path(tmp), scheduled)
        never_run = []
        for ticker, run in runs.items():
            if not (isinstance(run, TickerRun) and run.decision.state.is_completed()):
                failures[ticker] = run.root_cause()
                logger.error("%s failed at %s", ticker, failures[ticker])
                why = f"not run: {ticker} failed at {failures[ticker].splitlines()[0]}"
                never_run += [(f, ticker, why[:300]) for f in run.all() if f.state.is_pending()]
                continue
            s = summary[ticker] = _summary(run)
            logger.info("%s: v%s serves %s, source=%s skill %+.2f %% (DM p %.2g), coverage_95 "
                        "%.3f, interval score %.4f vs EWMA %.4f; %s", ticker, s["version"],
                        s["forecaster"], s["source"], s["skill_rmse_pct"], s["dm_pvalue_naive"],
                        s["test_coverage_95"], s["test_interval_score_95"],
                        s["ewma_interval_score_95"], s["reason"])
    end_never_run(never_run)
    _publish(cfg, summary, failures)
    if failures:
        detail = "\n".join(f"  - {t}: {msg}" for t, msg in failures.items())
        ok = ", ".join(summary) or "none"
        raise PipelineFailed(f"{len(failures)} of {len(cfg.tickers)} ticker(s) failed "
                             f"(succeeded: {ok}):\n{detail}", summary, failures)
    return summary
