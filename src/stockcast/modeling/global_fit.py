"""One network for many series (``model.scope: global``): every series is windowed and scaled on
its own training rows (a $5 stock and a $3,000 index look alike in model units), the windows
of all of them train one LSTM with early stopping on all their validation windows, and each
run ticker is then calibrated, evaluated and served on its own, as with per-ticker models.

No look-ahead across series: the training and early-stopping windows of every series end at
the earliest validation end among the run's tickers, so no ticker's test span was seen, not
even through another series' same days.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from stockcast.config import ModelConfig, TrainConfig, WindowConfig
from stockcast.errors import TrainingError
from stockcast.modeling.forecaster import calibrate
from stockcast.modeling.recipe import (
    ServingFit,
    TickerFit,
    every_window,
    refit_plan,
    serve_refit,
)
from stockcast.modeling.trainer import refit, train_model
from stockcast.modeling.windows import PreparedData, Split, prepare_windows


def _before(data: PreparedData, split: Split, cutoff: pd.Timestamp) -> Split:
    """The windows of ``split`` whose last target date is on or before ``cutoff``."""
    dates = pd.to_datetime(data.frame["Date"]).to_numpy()
    keep = dates[split.origins + data.transformer.horizon] <= np.datetime64(cutoff)
    return Split(split.x[keep], split.y[keep], split.origins[keep], split.base[keep])


def _stack(splits: list[Split]) -> Split:
    return Split(*(np.concatenate([getattr(s, f) for s in splits])
                   for f in ("x", "y", "origins", "base")))


def validation_cutoff(datas: dict[str, PreparedData], tickers: list[str]) -> pd.Timestamp:
    """The earliest last validation date among the run's tickers."""
    return min(pd.Timestamp(datas[t].frame["Date"].iloc[datas[t].bounds.val_end - 1])
               for t in tickers)


def fit_global(frames: dict[str, pd.DataFrame], extra: dict[str, pd.DataFrame],
               window: WindowConfig, model: ModelConfig,
               train: TrainConfig) -> dict[str, TickerFit]:
    """Train one LSTM on the windows of the run's ``frames`` and of the ``extra`` series
    (the bundled samples not in the run), then calibrate each run ticker on its own
    validation span. Returns a TickerFit per run ticker, all sharing the trained network."""
    if not frames:
        raise TrainingError("no ticker's prices passed validation: nothing to train a global "
                            "model on (see each ticker's error)")
    series = {**frames, **{t: f for t, f in extra.items() if t not in frames}}
    datas = {t: prepare_windows(f, window, model) for t, f in series.items()}
    cutoff = validation_cutoff(datas, list(frames))
    shared_train = _stack([_before(d, d.train, cutoff) for d in datas.values()])
    shared_val = _stack([_before(d, d.val, cutoff) for d in datas.values()])
    result = train_model(shared_train, shared_val, model, train)
    return {t: TickerFit(datas[t], result, calibrate(result.model, datas[t]), tuple(series))
            for t in frames}


def refit_global(fits: dict[str, TickerFit], model_cfg: ModelConfig,
                 train_cfg: TrainConfig) -> dict[str, ServingFit]:
    """The serving refit of a global model: one network refit on every window of every run
    ticker through its last date (``refit_plan``: by default from the trained weights); each
    ticker keeps
    its own transform and calibration, aligned to the evaluated widths (``serve_refit``)."""
    first = next(iter(fits.values()))
    if not train_cfg.refit:
        return {t: serve_refit(fit, None) for t, fit in fits.items()}
    epochs, init = refit_plan(first.result, train_cfg)
    fitted = refit(_stack([every_window(fit.data) for fit in fits.values()]), epochs,
                   model_cfg, train_cfg, init)
    start = "evaluation fit" if init is not None else "scratch"
    return {t: serve_refit(fit, fitted, start) for t, fit in fits.items()}
