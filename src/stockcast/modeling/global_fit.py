"""One network for many series (``model.scope: global``): every series is windowed and scaled on
its own training rows (a $5 stock and a $3,000 index look alike in model units), the windows
of all of them train one LSTM with early stopping on all their validation windows, and each
run ticker is then calibrated, evaluated and served on its own, as with per-ticker models.

No look-ahead across series: the training and early-stopping windows of every series end at
the earliest validation end among the run's tickers, so no ticker's test span was seen, not
even through another series' same days.

So one ticker whose prices end early (a delisted or stale series) would cut every other
series' windows to its validation end. A ticker that would cost the others more than
``MAX_WINDOW_LOSS`` of their shared windows is trained alone instead (its own network, as with
``scope: ticker``), and its fit says so and what it would have cost (``TickerFit.note``); every
fit records the last date its network's windows reached (``trained_to``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from stockcast.config import ModelConfig, TrainConfig, WindowConfig
from stockcast.errors import TrainingError
from stockcast.modeling.recipe import (
    ServingFit,
    TickerFit,
    every_window,
    fit_and_calibrate,
    refit_plan,
    serve_refit,
    train_and_calibrate,
)
from stockcast.modeling.trainer import refit
from stockcast.modeling.windows import PreparedData, Split, prepare_windows


def _before(data: PreparedData, split: Split, cutoff: pd.Timestamp) -> Split:
    """The windows of ``split`` whose last target date is on or before ``cutoff``."""
    dates = pd.to_datetime(data.frame["Date"]).to_numpy()
    keep = dates[split.origins + data.transformer.horizon] <= np.datetime64(cutoff)
    return Split(split.x[keep], split.y[keep], split.origins[keep], split.base[keep])


def validation_cutoff(datas: dict[str, PreparedData], tickers: list[str]) -> pd.Timestamp:
    """The earliest last validation date among the run's tickers."""
    return min(pd.Timestamp(datas[t].frame["Date"].iloc[datas[t].bounds.val_end - 1])
               for t in tickers)


MAX_WINDOW_LOSS = 0.05  # share of the others' shared windows one early ticker may cost


def _shared_windows(datas: dict[str, PreparedData], cutoff: pd.Timestamp) -> int:
    return sum(len(_before(d, d.train, cutoff)) + len(_before(d, d.val, cutoff))
               for d in datas.values())


def split_early(datas: dict[str, PreparedData], tickers: list[str]
                ) -> tuple[list[str], dict[str, str]]:
    """The run tickers that train together, and for each ticker trained alone why: one whose
    validation ends so early that the shared windows of the others (extras included) would
    shrink by more than ``MAX_WINDOW_LOSS``, taken earliest first."""
    together = sorted(tickers, key=lambda t: validation_cutoff(datas, [t]))
    alone: dict[str, str] = {}
    while len(together) > 1:
        early, rest = together[0], together[1:]
        others = {t: d for t, d in datas.items() if t != early}
        with_it, without = (_shared_windows(others, validation_cutoff(datas, group))
                            for group in (together, rest))
        if without == 0 or (without - with_it) / without <= MAX_WINDOW_LOSS:
            break
        alone[early] = (f"trained alone: its validation ends "
                        f"{validation_cutoff(datas, [early]).date()}, and the global model would "
                        f"have cut the other series' windows from {without} to {with_it}")
        together = rest
    return together, alone


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
    together, alone = split_early(datas, list(frames))
    shared = {t: d for t, d in datas.items() if t not in alone}
    cutoff = validation_cutoff(datas, together)
    shared_train = Split.joined([_before(d, d.train, cutoff) for d in shared.values()])
    shared_val = Split.joined([_before(d, d.val, cutoff) for d in shared.values()])
    fits = train_and_calibrate({t: datas[t] for t in together}, shared_train, shared_val, model,
                               train, trained_on=tuple(shared), trained_to=str(cutoff.date()))
    for t, why in alone.items():  # the one recipe, as with scope: ticker
        fits[t] = replace(fit_and_calibrate(frames[t], window, model, train),
                          trained_to=str(validation_cutoff(datas, [t]).date()), note=why)
    return {t: fits[t] for t in frames}


def refit_global(fits: dict[str, TickerFit], model_cfg: ModelConfig,
                 train_cfg: TrainConfig) -> dict[str, ServingFit]:
    """The serving refit of a global model: one network refit on every window of every run
    ticker through its last date (``refit_plan``: by default from the trained weights); each
    ticker keeps
    its own transform and calibration, aligned to the evaluated widths (``serve_refit``)."""
    if not train_cfg.refit:
        return {t: serve_refit(fit, None) for t, fit in fits.items()}
    out: dict[str, ServingFit] = {}
    for group in _by_network(fits):  # the shared network, and each ticker trained alone
        epochs, init = refit_plan(fits[group[0]].result, train_cfg)
        fitted = refit(Split.joined([every_window(fits[t].data) for t in group]), epochs,
                       model_cfg, train_cfg, init)
        start = "evaluation fit" if init is not None else "scratch"
        out |= {t: serve_refit(fits[t], fitted, start) for t in group}
    return {t: out[t] for t in fits}


def _by_network(fits: dict[str, TickerFit]) -> list[list[str]]:
    """The tickers grouped by the network their evaluation fit trained (in order)."""
    groups: dict[int, list[str]] = {}
    for t, fit in fits.items():
        groups.setdefault(id(fit.result), []).append(t)
    return list(groups.values())
