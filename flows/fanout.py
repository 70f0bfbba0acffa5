"""Prefect's fan-out bookkeeping for the training flow: tickers in bounded, overlapping waves,
each ticker's futures in pipeline order, the first failed stage as the root cause. Which stage
runs when is ``flows/train.py``'s ``run_ticker``; what a stage does is ``stockcast.pipeline``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from prefect.exceptions import UpstreamTaskError
from prefect.futures import PrefectFuture, wait

from flows.tasks import (
    commit_cache_task,
    download_task,
    fit_global_task,
    freshness_task,
    ingest_task,
    refit_global_task,
    submit_for,
    upstream,
    validate_task,
)
from stockcast.config import PipelineConfig
from stockcast.registry.store import MlflowStore


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
class Front(_Stages):
    """A ticker's data stages: the model stages are submitted only once these passed, so a
    ticker without data fails once, at its data, with no cascade of tasks that never ran."""

    prices: PrefectFuture
    validated: PrefectFuture | None = None
    freshness: PrefectFuture | None = None
    cached: PrefectFuture | None = None


@dataclass(frozen=True)
class Shared:
    """A global model's futures: the evaluation fits and the serving refits, per ticker."""

    fits: PrefectFuture
    refits: PrefectFuture


RunTicker = Callable[..., TickerRun]  # (ticker, cfg, store, work_dir, front, shared=None)


def submit_fronts(tickers: tuple[str, ...], cfg: PipelineConfig,
                  scheduled: bool) -> dict[str, Front]:
    """Every ticker's data stages, finished: ingest first, and the checks only for the tickers
    whose prices arrived (an unknown ticker fails once, at ingest). Yahoo downloads of the
    wave run at once first (``download``), each ticker keeping its own result or error."""
    batched = cfg.data.source in ("auto", "yfinance") and len(tickers) > 1
    downloads = download_task(tickers, cfg.data) if batched else {}
    prices = {t: submit_for(ingest_task, t, t, cfg.data, prefetched=downloads.get(t))
              for t in tickers}
    wait(list(prices.values()))
    fronts = {t: submit_front(t, p, cfg, scheduled) if p.state.is_completed() else Front(p)
              for t, p in prices.items()}
    wait([f for front in fronts.values() for f in front.all()])
    return fronts


def submit_front(ticker: str, prices: PrefectFuture, cfg: PipelineConfig,
                 scheduled: bool) -> Front:
    """Validate, decide freshness and commit the cache (task runs ``<stage>-<T>``)."""
    validated = submit_for(validate_task, ticker, prices, cfg.window, cfg.validation,
                           cfg.data.data_dir / "reports")
    freshness = submit_for(freshness_task, ticker, validated, cfg.data, scheduled)
    cached = submit_for(commit_cache_task, ticker, validated, cfg.data.data_dir)
    return Front(prices, validated, freshness, cached)


def submit_shared(fronts: dict[str, Front], cfg: PipelineConfig) -> Shared:
    """``model.scope: global``: one fit over the tickers whose data passed."""
    usable = {t: front.validated for t, front in fronts.items()}
    fits = fit_global_task.submit(upstream(usable), cfg)
    return Shared(fits, refit_global_task.submit(upstream(fits), cfg.model, cfg.train))


def waves(tickers: tuple[str, ...], size: int) -> list[tuple[str, ...]]:
    """The tickers in consecutive groups of ``size``: what is in flight stays bounded (300
    tickers submitted at once held thousands of threads)."""
    return [tickers[i:i + size] for i in range(0, len(tickers), size)]


def submit_all(cfg: PipelineConfig, store: MlflowStore, work_dir: Path, scheduled: bool,
               run_ticker: RunTicker) -> dict[str, TickerRun | Front]:
    """Every ticker's pipeline (``run_ticker``), in waves of four times
    ``orchestration.max_workers`` tickers (enough to keep the task runner busy, few enough to
    bound what is in flight), all finished. Two waves overlap: a wave's data stages and
    trainings start while the wave before it finishes its evaluation and tracking, so the
    cores do not idle at each wave's tail; the wave before that has ended. A ticker whose
    data stages failed keeps its ``Front`` only. A global model: every ticker's data stages
    in waves, then one fit over those that passed."""
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
