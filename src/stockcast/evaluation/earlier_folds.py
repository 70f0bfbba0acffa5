"""Walk-forward evidence ending tonight: the decisions that choose what is served (the LSTM or
a volatility baseline; a new version or the champion) look beyond one test span.

Tonight's evaluation fit is out of sample on its test span only. Each earlier fold cuts the
history where the later fold's test span starts and fits a configuration there cold (its own
train / validation / test fractions, its own early stopping and calibration), so the folds'
test spans are disjoint and consecutive, ending with tonight's: ``folds`` spans of fresh
out-of-sample days, each forecast by its own fits. A decision pools them
(``significance.pooled_dm_test``), and since every fold's fits are independent draws of
their training noise, that noise averages out over the folds where one span cannot average it.
Fitting costs a cold fit per configuration and earlier fold, so the decisions pay it only when
tonight's span alone would change what is served (``forecaster_choice``, ``promotion``). The
serving choice keeps its folds' LSTM fits with the run (``FoldFit``); a later night re-scores
a kept fit on its fold instead of fitting again while the fit's validation end lies at most
``reuse_sessions`` sessions before the fold's own (every day it scores is still after it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import ModelConfig, PipelineConfig, TrainConfig, WindowConfig
from stockcast.evaluation.forecast_tables import forecast_table
from stockcast.evaluation.forecaster_choice import LSTM, Choice
from stockcast.evaluation.interval_scores import relative_interval_score
from stockcast.evaluation.significance import TEST_NAME, DMResult, pooled_dm_test, training_noise
from stockcast.modeling.forecaster import Forecast, Forecaster
from stockcast.modeling.recipe import TickerFit, fit_and_calibrate
from stockcast.modeling.slots import training_slot
from stockcast.modeling.volatility_forecasters import BY_PREFIX, VolatilityForecaster
from stockcast.modeling.windows import PreparedData, prepare_windows
from stockcast.splits import min_rows, split_bounds
from stockcast.stopping import RunStopped

# The training settings that make a different model (a seed, the threads, the device or the
# refit do not: a reseeded rerun is the same configuration).
RECIPE_TRAIN = ("epochs", "batch_size", "lr", "weight_decay", "grad_clip", "patience")


@dataclass(frozen=True)
class Recipe:
    """A configuration as the folds fit it: windows, network and optimisation."""

    window: WindowConfig
    model: ModelConfig
    train: TrainConfig

    @classmethod
    def of(cls, cfg: PipelineConfig) -> Recipe:
        return cls(cfg.window, cfg.model, cfg.train)

    def settings(self) -> dict[str, object]:
        """What makes this configuration's model, flattened (``model.hidden_size``...)."""
        train = {k: getattr(self.train, k) for k in RECIPE_TRAIN}
        parts = {"window": self.window.model_dump(mode="json"),
                 "model": self.model.model_dump(mode="json"), "train": train}
        return {f"{part}.{k}": v for part, values in parts.items() for k, v in values.items()}

    def differences(self, other: Recipe) -> list[str]:
        """The settings where ``other`` makes a different model: ``model.hidden_size 32 -> 64``."""
        mine, theirs = self.settings(), other.settings()
        return [f"{k} {theirs.get(k)} -> {v}" for k, v in mine.items() if theirs.get(k) != v]

    def fit(self, frame: pd.DataFrame, end: int, workers: int = 1) -> TickerFit:
        """A cold fit on the first ``end`` rows, in a training slot (no progress bar)."""
        train = self.train.model_copy(update={"progress": False})
        with training_slot(workers):
            return fit_and_calibrate(frame.iloc[:end].reset_index(drop=True), self.window,
                                     self.model, train)


@dataclass(frozen=True)
class FoldFit:
    """An earlier fold's LSTM as a decision used it: the calibrated forecaster and the last
    date its early stopping and calibration saw; every later day is out of sample for it."""

    forecaster: Forecaster
    val_end: pd.Timestamp

    @classmethod
    def of(cls, fit: TickerFit) -> FoldFit:
        data = fit.data
        return cls(fit.forecaster, pd.Timestamp(data.frame["Date"].iloc[data.bounds.val_end - 1]))


@dataclass(frozen=True)
class WalkForward:
    """How many folds a decision pools (tonight's span included) and the training noise each
    fit adds on a fold (``promotion.walk_forward_seed_sd``, relative)."""

    recipe: Recipe
    folds: int = 3
    seed_sd: float = 0.0
    workers: int = 1
    reuse_sessions: int = 0
    # The fits an earlier night kept for this recipe's folds, read only when folds are needed.
    kept: Callable[[Recipe], Sequence[FoldFit]] | None = None

    @classmethod
    def of(cls, cfg: PipelineConfig) -> WalkForward | None:
        """The configured walk-forward, or None where there is none: one fold, or a global
        model (one network for every series cannot be refit per ticker and fold)."""
        if cfg.promotion.walk_forward_folds < 2 or cfg.model.scope != "ticker":
            return None
        return cls(Recipe.of(cfg), cfg.promotion.walk_forward_folds,
                   cfg.promotion.walk_forward_seed_sd, cfg.orchestration.max_workers,
                   cfg.promotion.walk_forward_reuse_sessions)

    def ends(self, n_rows: int) -> list[int]:
        """The rows each earlier fold is fit on, oldest first: each ends where the next fold's
        test span starts; folds too short for the configuration are left out."""
        ends, n = [], n_rows
        for _ in range(self.folds - 1):
            n = split_bounds(n, self.recipe.window).val_end
            if n < min_rows(self.recipe.window):
                break
            ends.append(n)
        return ends[::-1]

    def reusable(self, kept: Sequence[FoldFit], frame: pd.DataFrame, end: int) -> FoldFit | None:
        """The newest kept fit that may stand in for a cold fit on the first ``end`` rows: its
        validation end is a date of this history no later than the fold's validation end (so
        it lies before every day the fold scores) and at most ``reuse_sessions`` rows before
        it."""
        dates = pd.to_datetime(frame["Date"].iloc[:end]).reset_index(drop=True)
        own = split_bounds(end, self.recipe.window).val_end - 1
        usable = []
        for fit in kept:
            row = int(dates.searchsorted(fit.val_end, side="right")) - 1
            if row >= 0 and dates.iloc[row] == fit.val_end and 0 <= own - row <= self.reuse_sessions:
                usable.append((row, fit))
        return max(usable, key=lambda pair: pair[0])[1] if usable else None

    def fold(self, frame: pd.DataFrame, end: int, model: type[VolatilityForecaster],
             kept: Sequence[FoldFit]) -> tuple[tuple, FoldFit, bool]:
        """One earlier fold's (baseline loss, LSTM loss, dates), the LSTM fit it used, and
        whether that fit was kept from an earlier night (re-scored) rather than fit tonight."""
        reuse = self.reusable(kept, frame, end)
        if reuse is not None:
            data = prepare_windows(frame.iloc[:end].reset_index(drop=True), self.recipe.window,
                                   self.recipe.model)
            lstm = reuse.forecaster.forecast_at(data.frame, data.test.origins)
            return losses_against(data, lstm, model), reuse, True
        fitted = self.recipe.fit(frame, end, self.workers)
        return baseline_against_lstm(fitted, model), FoldFit.of(fitted), False


def test_span_table(fit: TickerFit, forecast: Forecast | None = None) -> pd.DataFrame:
    """A fit's test-span forecast table (``forecast``: another forecaster's at those origins;
    the fit's own by default)."""
    data, test = fit.data, fit.data.test
    forecast = forecast or fit.forecaster.forecast_split(test, data.last_close(test))
    return forecast_table(data.frame["Date"], test.origins, forecast, data.actual_prices(test))


@dataclass(frozen=True)
class Pooled:
    """A pooled walk-forward comparison of A against B: the test, each fold's relative change
    of A's mean loss against B's, and the span."""

    result: DMResult
    changes: tuple[float, ...]
    span: str

    def describe(self, a: str, b: str) -> str:
        per_fold = ", ".join(f"{100 * c:+.1f} %" for c in self.changes)
        return (f"{a} vs {b} over {len(self.changes)} walk-forward folds, origins {self.span} (per "
                f"fold {per_fold}); pooled {TEST_NAME} p {self.result.pvalue:.3g}")


def pool(spans: Sequence[tuple[np.ndarray, np.ndarray, pd.Series]], horizon: int,
         seed_sd: float, fits: int) -> Pooled:
    """Pool per-origin losses ``(loss_a [W] or [W, h], loss_b, target dates)`` of several
    folds. Each fold's mean difference carries ``fits`` independent training draws of relative
    sd ``seed_sd`` (of B's loss), weighted by the fold's share of the origins."""
    spans = [(np.asarray(a, np.float64), np.asarray(b, np.float64), d) for a, b, d in spans
             if len(a)]
    noise = training_noise([b for _, b, _ in spans], seed_sd, fits)
    result = pooled_dm_test([(a, b) for a, b, _ in spans], horizon, noise)
    changes = tuple(float(np.mean(a) / np.mean(b) - 1) for a, b, _ in spans)
    dates = pd.to_datetime(pd.concat([pd.Series(d) for _, _, d in spans])) if spans else None
    span = "" if dates is None else f"{dates.min().date()}..{dates.max().date()}"
    return Pooled(result, changes, span)


def baseline_against_lstm(fit: TickerFit, model: type[VolatilityForecaster]
                          ) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """On a fold's test span: the calibrated volatility ``model`` (fit on the fold's
    training rows, calibrated on its validation span, as tonight's) and the fold's LSTM, as
    per-origin relative 95 % interval scores [W, h], with the origins' dates."""
    data, test = fit.data, fit.data.test
    return losses_against(data, fit.forecaster.forecast_split(test, data.last_close(test)), model)


def losses_against(data: PreparedData, lstm: Forecast, model: type[VolatilityForecaster]
                   ) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """``baseline_against_lstm`` for an LSTM forecast already made at the fold's test
    origins."""
    test = data.test
    last, actual = data.last_close(test), data.actual_prices(test)
    h = actual.shape[1]
    baseline = model.fitted(data.frame, data.bounds.train_end, data.val.origins, h)
    theirs = baseline.forecast_at(data.frame, test.origins)
    return (relative_interval_score(theirs.quantiles, theirs.levels, actual, last),
            relative_interval_score(lstm.quantiles, lstm.levels, actual, last),
            data.frame["Date"].iloc[test.origins].reset_index(drop=True))


def confirm_baseline(choice: Choice, fit: TickerFit,
                     tonight: tuple[np.ndarray, np.ndarray, pd.Series], walk: WalkForward,
                     alpha: float) -> Choice:
    """A volatility baseline that beat the LSTM on tonight's test span alone is served only if
    it is significantly better over the walk-forward folds pooled (tonight's ``(baseline
    loss, LSTM loss, dates)`` and each earlier fold's, the LSTM fit cold at each; one LSTM
    fit's training noise per fold): an edge on one span does not decide what is served."""
    frame, model = fit.data.frame, BY_PREFIX[choice.prefix]
    try:
        kept = walk.kept(walk.recipe) if walk.kept is not None and walk.reuse_sessions else ()
        folds = [walk.fold(frame, end, model, kept) for end in walk.ends(len(frame))]
    except RunStopped:
        raise
    except Exception as exc:  # a fold that cannot be fit leaves tonight's span to decide
        return Choice(choice.prefix, choice.best_baseline, choice.pvalue,
                      f"{choice.reason} (tonight's test span alone: the walk-forward folds "
                      f"could not be fit, {type(exc).__name__}: {exc})"[:500])
    pooled = pool([*(span for span, _, _ in folds), tonight], fit.forecaster.horizon,
                  walk.seed_sd, fits=1)
    label, p = model.name, pooled.result.pvalue
    evidence = pooled.describe(label, "the LSTM") + f" that {label} is better"
    reused = sum(was_kept for _, _, was_kept in folds)
    if reused:
        evidence += f"; {reused} of {len(folds)} earlier fold fits kept from an earlier night"
    n, fits = len(pooled.changes), tuple(fold_fit for _, fold_fit, _ in folds)
    if p < alpha:
        return Choice(choice.prefix, choice.best_baseline, p,
                      f"LSTM worse than {label} ({evidence} < alpha {alpha}): serving {label}",
                      n, fits)
    return Choice(LSTM, choice.best_baseline, p,
                  f"serving the LSTM: {label} was better on tonight's test span alone (p "
                  f"{choice.pvalue:.3g}), not over the folds ({evidence} >= alpha {alpha})", n,
                  fits)
