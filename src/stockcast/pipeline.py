"""One ticker's training stages as plain functions that own their policy: where training
starts, which forecaster is served, register only fresh prices, promote only a registered
version, figures never fatal. The flow's tasks (``flows/tasks.py``) wrap them one line each and
the tests call them directly, so the two cannot drift apart.

    warm_start -> fit -> (evaluate) -> serve -> (track) -> register -> promote -> figures

A global model (``model.scope: global``) swaps ``fit``/``serve`` for ``fit_shared`` (one
network over every ticker) and ``serve_shared`` (this ticker's share of its refit).
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import replace
from pathlib import Path

from stockcast.config import PipelineConfig
from stockcast.data.freshness import Freshness
from stockcast.data.loading import bundled_samples
from stockcast.data.schemas import ValidatedPrices
from stockcast.evaluation.earlier_folds import FoldFit, Recipe, WalkForward
from stockcast.evaluation.scorecard import Evaluation
from stockcast.modeling import slots
from stockcast.modeling.global_fit import fit_global
from stockcast.modeling.recipe import (
    ServingFit,
    TickerFit,
    WarmStart,
    epochs_for,
    fit_and_calibrate,
    fit_for_serving,
)
from stockcast.progress import EpochProgress
from stockcast.registry.evaluation_fit import kept_fold_fits
from stockcast.registry.promotion import Decision, promote_if_better
from stockcast.registry.run_figures import figures_wanted, log_run_figures
from stockcast.registry.store import MlflowStore
from stockcast.registry.tracking import LoggedRun
from stockcast.registry.versions import model_name, register_version
from stockcast.registry.warm_start import champion_start
from stockcast.stopping import RunStopped

log = logging.getLogger(__name__)


def training_slot(cfg: PipelineConfig) -> threading.BoundedSemaphore:
    """The process's semaphore for ``cfg.orchestration.max_workers`` concurrent trainings."""
    return slots.training_slot(cfg.orchestration.max_workers)


def _name(cfg: PipelineConfig, ticker: str) -> str:
    return model_name(cfg.tracking.model_name_prefix, ticker)


def walk_forward(cfg: PipelineConfig, store: MlflowStore, ticker: str) -> WalkForward | None:
    """The serving choice's walk-forward folds, with the fits an earlier night kept for them
    (read from the registry only when a baseline wins tonight's span and folds are needed)."""
    walk = WalkForward.of(cfg)
    if walk is None or walk.reuse_sessions == 0:
        return walk
    return replace(walk, kept=functools.partial(
        _kept_folds, store, _name(cfg, ticker), cfg.tracking.signing_key()))


def _kept_folds(store: MlflowStore, name: str, key: str | None, recipe: Recipe
                ) -> tuple[FoldFit, ...]:
    """The kept fold fits, or none (said in the logs) when they cannot be read: fit again."""
    try:
        return store.call("registry read", lambda: kept_fold_fits(store, name, key, recipe))
    except RunStopped:
        raise
    except Exception as exc:  # noqa: BLE001 - a fold fit kept is a saving, never needed
        log.warning("%s: the earlier folds' kept fits could not be read (%s); fitting them "
                    "again", name, exc)
        return ()


def warm_start(ticker: str, cfg: PipelineConfig, store: MlflowStore) -> WarmStart:
    """Where tonight's fit starts: the champion's evaluation-fit weights when the settings
    match, else scratch; the reason is logged either way (never fatal: scratch works)."""
    try:
        start = champion_start(_name(cfg, ticker), cfg, store, cfg.tracking.signing_key())
    except Exception as exc:  # reading the champion failed: train cold, and say why
        start = WarmStart(None, f"scratch: the champion could not be read ({exc})"[:300])
    log.info("%s: training starts from %s", ticker, start.source)
    return start


def fit(validated: ValidatedPrices, cfg: PipelineConfig,
        start: WarmStart | None = None) -> TickerFit:
    """Window (scaler fit on train rows only), train with early stopping (from ``start``'s
    weights when given), calibrate the intervals on the validation span, in a training slot
    (no files, no MLflow)."""
    progress = (EpochProgress(validated.ticker, epochs_for(cfg.train, start))
                if cfg.train.progress else None)
    with training_slot(cfg):
        return fit_and_calibrate(validated.frame, cfg.window, cfg.model, cfg.train, progress,
                                 start)


def serve(fit: TickerFit, evaluation: Evaluation, cfg: PipelineConfig) -> ServingFit:
    """The forecaster to serve, refit through the last date (``train.refit``): the LSTM (in a
    training slot), or the volatility baseline the evaluation found significantly better."""
    if evaluation.choice.is_lstm:
        with training_slot(cfg):
            return fit_for_serving(fit, cfg.model, cfg.train)
    return _serve_baseline(fit, evaluation, cfg)


def _serve_baseline(fit: TickerFit, evaluation: Evaluation, cfg: PipelineConfig) -> ServingFit:
    """The volatility baseline the evaluation chose, refit through the last date (no network
    is trained: no slot), and why it is served."""
    log.warning("%s", evaluation.choice.reason)
    return fit_for_serving(fit, cfg.model, cfg.train, evaluation.evaluated)


def fit_shared(validated: dict[str, ValidatedPrices], cfg: PipelineConfig
               ) -> dict[str, TickerFit]:
    """One network on the windows of every ticker and bundled sample; per-ticker calibration."""
    extra = bundled_samples(cfg.window, cfg.validation, skip=tuple(validated))
    log.info("global model: training on %s", ", ".join([*validated, *extra]))
    fits = fit_global({t: v.frame for t, v in validated.items()},
                      {t: v.frame for t, v in extra.items()}, cfg.window, cfg.model, cfg.train)
    for ticker, one in fits.items():
        if one.note:
            log.warning("%s: %s", ticker, one.note)
    return fits


def ticker_share(fits: dict[str, TickerFit], ticker: str) -> TickerFit:
    """This ticker's calibrated view of the global model."""
    return fits[ticker]


def serve_shared(fit: TickerFit, evaluation: Evaluation, refits: dict[str, ServingFit],
                 ticker: str, cfg: PipelineConfig) -> ServingFit:
    """The ticker's served forecaster: the refit global network, or the better baseline."""
    if evaluation.choice.is_lstm:
        return refits[ticker]
    return _serve_baseline(fit, evaluation, cfg)


def register(logged: LoggedRun, ticker: str, cfg: PipelineConfig, store: MlflowStore,
             freshness: Freshness) -> str | None:
    """Register the run's model as a new version of the ticker's registered model (not when
    the prices are stale and ``data.on_stale`` is warn)."""
    if not freshness.registrable:
        return None
    return register_version(logged.model_uri, logged.run_id, _name(cfg, ticker), store)


def promote(version: str | None, evaluation: Evaluation, fit: TickerFit, ticker: str,
            cfg: PipelineConfig, store: MlflowStore, freshness: Freshness) -> Decision:
    """Move `champion` only on significant out-of-sample evidence; record why. A version that
    was not registered is not decided on."""
    if version is None:
        return Decision(False, f"not registered: {freshness.reason}")
    return promote_if_better(version, _name(cfg, ticker), evaluation, fit.data.frame,
                             cfg.promotion, store, cfg.tracking.signing_key(),
                             WalkForward.of(cfg))


def figures(decision: Decision, logged: LoggedRun, validated: ValidatedPrices, fit: TickerFit,
            evaluation: Evaluation, cfg: PipelineConfig, store: MlflowStore,
            out_dir: Path) -> str:
    """The run's figures, added to it after the decision (``tracking.figures``: the promoted
    runs by default). Never fatal: the version and its decision stand; a failure is a
    warning in the logs and on the run's ``figures`` tag."""
    wanted, status = figures_wanted(cfg.tracking.figures, decision.promote)
    if wanted:
        try:
            log_run_figures(logged.run_id, validated, fit, evaluation, cfg, store, out_dir)
        except Exception as exc:  # noqa: BLE001 - a figure is not worth the night
            status = f"failed: {type(exc).__name__}: {exc}"[:300]
            log.warning("%s: figures %s", validated.ticker, status)
    store.call("tagging figures", lambda: store.client.set_tag(logged.run_id, "figures", status))
    return status
