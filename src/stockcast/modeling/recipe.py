"""The one recipe: windows -> train -> calibrate, then (for serving) the refit through the last
date. The flow's tasks, the walk-forward backtest, the benchmarks and the tests all fit through
these two functions, so they cannot drift apart."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stockcast.config import ModelConfig, TrainConfig, WindowConfig
from stockcast.modeling.forecaster import Forecaster, ServedForecaster, calibrate
from stockcast.modeling.trainer import EpochCallback, TrainResult, refit, train_model
from stockcast.modeling.volatility_forecasters import VolatilityForecaster, refit_baseline
from stockcast.modeling.windows import PreparedData, Split, prepare_windows


@dataclass(frozen=True)
class TickerFit:
    """One evaluation fit: the windows it saw, how training went, the calibrated forecaster."""

    data: PreparedData
    result: TrainResult
    forecaster: Forecaster
    trained_on: tuple[str, ...] = ()  # a global model's series; empty: this ticker's alone
    warm_start_from: str = "scratch"  # where the weights started (a champion, or scratch)
    # The last date the network's training and validation windows reached ("": this series'
    # own validation end), and why a ticker of a global run was trained alone ("": it was not).
    trained_to: str = ""
    note: str = ""


@dataclass(frozen=True)
class WarmStart:
    """Where tonight's training starts: a champion's evaluation-fit network, or (None) fresh
    weights; ``source`` says which and why (``champion v3 (run 1a2b3c4d)``, ``scratch: ...``)."""

    model: object | None  # torch.nn.Module
    source: str = "scratch"


def epochs_for(train: TrainConfig, start: WarmStart | None) -> int:
    """The most epochs a fit trains: ``train.epochs``, or at most ``train.warm_start_epochs``
    when it continues from a champion's weights."""
    if start is not None and start.model is not None:
        return min(train.epochs, train.warm_start_epochs)
    return train.epochs


def fit_and_calibrate(frame: pd.DataFrame, window: WindowConfig, model: ModelConfig,
                      train: TrainConfig, on_epoch: EpochCallback | None = None,
                      start: WarmStart | None = None) -> TickerFit:
    """Split and window a validated frame (scaler fit on training rows only), train with early
    stopping on the validation span, and calibrate the intervals there (split-conformal).
    A warm ``start`` continues from its weights for at most ``train.warm_start_epochs``."""
    data = prepare_windows(frame, window, model)
    return train_and_calibrate({"": data}, data.train, data.val, model, train, on_epoch,
                               start)[""]


def train_and_calibrate(datas: dict[str, PreparedData], train_split: Split, val_split: Split,
                        model: ModelConfig, train: TrainConfig,
                        on_epoch: EpochCallback | None = None, start: WarmStart | None = None,
                        **fields) -> dict[str, TickerFit]:
    """The recipe's training step: one network trained on ``train_split`` with early stopping
    on ``val_split`` (one series' spans, or a global model's windows of many), then calibrated
    on each series' own validation span. ``fields``: the fits' other TickerFit fields."""
    init = start.model if start is not None else None
    train = train.model_copy(update={"epochs": epochs_for(train, start)})
    result = train_model(train_split, val_split, model, train, on_epoch, init)
    source = start.source if start is not None else "scratch"
    return {name: TickerFit(data, result, calibrate(result.model, data), warm_start_from=source,
                            **fields) for name, data in datas.items()}


@dataclass(frozen=True)
class ServingFit:
    """The forecaster to register and serve, and the last dates each fit's weights saw."""

    forecaster: ServedForecaster
    eval_end: pd.Timestamp  # the evaluation fit trained on rows up to here
    serve_end: pd.Timestamp  # the served model trained on rows up to here
    refit: bool
    seconds: float
    # The refit's predictive scale over the evaluation fit's on the test windows, per step,
    # before alignment (1.0 where the evaluated forecaster is served as it is).
    width_ratio: tuple[float, ...] = (1.0,)
    # Where the served weights started: "evaluation fit" (a warm refit), "scratch", "none"
    # (the evaluated forecaster itself is served), or a served volatility model re-estimated.
    warm_start_from: str = "none"


def fit_for_serving(fit: TickerFit, model_cfg: ModelConfig, train_cfg: TrainConfig,
                    baseline: VolatilityForecaster | None = None) -> ServingFit:
    """With ``baseline`` (the evaluation found it significantly better than the LSTM): that
    volatility model, refit through the last date (``serve_baseline``). Otherwise: refit the
    LSTM on every window through the last date, for the epoch count early stopping chose,
    so the served model knows the most recent prices (by default continuing from the evaluated
    weights for ``train.refit_epochs``: ``refit_plan``). It keeps the evaluation fit's transform
    and conformal quantiles (there is no held-out span left to calibrate on). With ``refit``
    False the evaluation fit itself is served."""
    if baseline is not None:
        return serve_baseline(fit, baseline)
    if not train_cfg.refit:
        return serve_refit(fit, None)
    epochs, init = refit_plan(fit.result, train_cfg)
    return serve_refit(fit, refit(every_window(fit.data), epochs, model_cfg, train_cfg, init),
                       "evaluation fit" if init is not None else "scratch")


def refit_plan(result: TrainResult, train_cfg: TrainConfig) -> tuple[int, object | None]:
    """Epochs and starting weights of the serving refit: ``refit_epochs`` from the evaluated
    weights (``refit_from: evaluated``), or the best epoch count from fresh weights."""
    if train_cfg.refit_from == "evaluated":
        return train_cfg.refit_epochs, result.model
    return max(1, result.best_epoch), None


def every_window(data: PreparedData) -> Split:
    """Every window of every split, through the last date."""
    return Split.joined([data.train, data.val, data.test])


def serve_refit(fit: TickerFit, fitted: TrainResult | None,
                warm_start_from: str = "evaluation fit") -> ServingFit:
    """The ticker's served LSTM: the ``fitted`` refit with the evaluation fit's transform and
    calibration, or (None) the evaluation fit itself. What is served is what was evaluated:
    the conformal quantiles were found for the evaluation fit's scale, so the refit's are
    rescaled to give the same widths on the most recent windows (the refit's own residuals
    there are in sample: no honest recalibration is possible)."""
    data, forecaster = fit.data, fit.forecaster
    dates = data.frame["Date"]
    eval_end = dates.iloc[data.bounds.train_end - 1]
    if fitted is None:
        return ServingFit(forecaster, eval_end, eval_end, False, 0.0)
    ratio = scale_ratio(fitted.model, forecaster, data)
    served = Forecaster(fitted.model, forecaster.transformer, forecaster.z / ratio[:, None],
                        forecaster.levels)
    return ServingFit(served, eval_end, dates.iloc[-1], True, fitted.seconds,
                      tuple(float(r) for r in ratio), warm_start_from)


def scale_ratio(model, evaluated: Forecaster, data: PreparedData) -> np.ndarray:
    """Per step [h]: the median over the test windows of ``model``'s predictive scale of the
    cumulative log return over the evaluated forecaster's."""
    last = data.last_close(data.test)
    _, theirs = evaluated.distribution(data.test, last)
    _, ours = Forecaster(model, evaluated.transformer, evaluated.z).distribution(data.test, last)
    return np.median(ours / theirs, axis=0)


def serve_baseline(fit: TickerFit, baseline: VolatilityForecaster) -> ServingFit:
    """The volatility baseline chosen in the LSTM's place, refit through the last date (it
    keeps the calibration found on the validation span); no network is refit."""
    start = time.perf_counter()
    dates = fit.data.frame["Date"]
    served = refit_baseline(baseline, fit.data.frame)
    return ServingFit(served, dates.iloc[fit.data.bounds.train_end - 1], dates.iloc[-1], True,
                      time.perf_counter() - start,
                      warm_start_from=f"{served.kind} re-estimated through the last date "
                                      "(a volatility model: no network refit)")
