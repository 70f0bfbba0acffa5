"""Cold or warm serving refit, and for how many epochs?

``bench_refit``: each bundled series is cut at 85 %: the evaluation fit and the serving refits
are made on the rows before the cut, a cold refit (fresh weights, the best epoch count) and warm
ones (1, 2 and 3 epochs from the evaluated weights), each served with its widths aligned to the
evaluated ones; all are scored on the held-out rows after the cut, which none saw.

``bench_refit_epochs``: at every year-end cut of the bundled series where the LSTM is served,
the warm refit with 1, 2 and 3 epochs and with 3 epochs under another seed (the noise any
change must be measured against), each served through the next year as a client gets it
(adapted bands, horizon 1)."""

from __future__ import annotations

import os
import time

import numpy as np
from scipy.stats import ttest_1samp
from served import SESSIONS, _validated, one_step_scores
from served_years import year_end_cuts

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.scorecard import evaluate_model, interval_metrics
from stockcast.modeling.adaptive import Tracking, adapted_forecast
from stockcast.modeling.recipe import every_window, fit_and_calibrate, fit_for_serving, serve_refit
from stockcast.modeling.trainer import refit

CUT = 0.85


def _held_out(forecaster, frame, origins: np.ndarray) -> dict:
    close = frame["Close"].to_numpy(np.float64)
    fc = forecaster.forecast_at(frame, origins)
    m = interval_metrics("x", fc.quantiles, fc.levels, close[origins + 1][:, None],
                         close[origins])
    return {"interval_score_95": m["x_interval_score_95"], "coverage_95": m["x_coverage_95"]}


def bench_refit() -> dict:
    """Per series: held-out 95 % interval score and coverage of the unrefit evaluation fit and
    of each refit, with the refit's seconds."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    out = {}
    for ticker in SAMPLE_TICKERS:
        path = sample_path(ticker)
        full = validate_prices(PriceData(ticker, read_price_file(path), "sample", str(path)),
                               cfg.window, cfg.validation).frame.reset_index(drop=True)
        cut = int(len(full) * CUT)
        fit = fit_and_calibrate(full.iloc[:cut], cfg.window, cfg.model, train)
        origins = np.arange(cut - 1, len(full) - 1)
        rows = {"no refit": {**_held_out(fit.forecaster, full, origins), "seconds": 0.0}}
        plans = {"cold": (max(1, fit.result.best_epoch), None),
                 **{f"warm {n}": (n, fit.result.model) for n in (1, 2, 3)}}
        for name, (epochs, init) in plans.items():
            start = time.perf_counter()
            result = refit(every_window(fit.data), epochs, cfg.model, train, init)
            seconds = time.perf_counter() - start
            served = serve_refit(fit, result).forecaster
            rows[name] = {**_held_out(served, full, origins), "seconds": seconds,
                          "epochs": epochs}
        out[ticker] = rows
    return out


def markdown(result: dict) -> list[str]:
    """The refit table for the docs."""
    lines = [f"**Serving refit** (cut at {CUT:.0%}, scored on the held-out rest; 95 % interval "
             "score, coverage, refit seconds):", "",
             "| series | " + " | ".join(next(iter(result.values()))) + " |",
             "|---|" + "---:|" * len(next(iter(result.values())))]
    for ticker, rows in result.items():
        cells = [f"{r['interval_score_95']:.3f}, {r['coverage_95']:.3f}, {r['seconds']:.1f} s"
                 for r in rows.values()]
        lines.append(f"| {ticker} | " + " | ".join(cells) + " |")
    return lines + [""]


# The refit's settings per variant: the default's epochs under another seed is the noise floor.
EPOCH_VARIANTS = {"3 epochs": {"refit_epochs": 3},
                  "3 epochs, seed 7": {"refit_epochs": 3, "seed": 7},
                  "2 epochs": {"refit_epochs": 2}, "1 epoch": {"refit_epochs": 1}}


def _served_year(fit, frame, cut: int, cfg: PipelineConfig, train) -> dict:
    """Each variant's refit served through the year after ``cut``: the adapted bands' 95 %
    interval score and coverages, and the refit's CPU seconds."""
    days = np.arange(cut - 1, min(cut - 1 + SESSIONS, len(frame) - 1))
    tracking = Tracking.from_config(cfg.intervals)
    rows = {}
    for name, update in EPOCH_VARIANTS.items():
        start = time.process_time()
        served = fit_for_serving(fit, cfg.model, train.model_copy(update=update)).forecaster
        seconds = time.process_time() - start
        fc = adapted_forecast(served, frame, days, tracking).forecast
        rows[name] = {**one_step_scores(fc, frame, days), "core_seconds": seconds}
    return rows


def bench_refit_epochs() -> list[dict]:
    """Every year-end cut of the bundled series where the evaluation chose the LSTM (one
    thread, as a night's fits run): each refit variant served through the next year."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": 1, "progress": False})
    out = []
    for ticker in SAMPLE_TICKERS:
        frame = _validated(ticker, read_price_file(sample_path(ticker)), cfg)
        for cut in year_end_cuts(frame, 1):
            label = f"{ticker} to {frame['Date'].iloc[cut - 1].date()}"
            fit = fit_and_calibrate(frame.iloc[:cut].reset_index(drop=True), cfg.window,
                                    cfg.model, train)
            if evaluate_model(fit, label, cfg.promotion.alpha).choice.is_lstm:
                out.append({"label": label, **_served_year(fit, frame, cut, cfg, train)})
    return out


def epochs_markdown(result: list[dict]) -> list[str]:
    """Per variant: the served years' interval score against the 3-epoch refit's and against
    the mean of the two 3-epoch seeds (paired t-test), coverage, refit CPU seconds."""
    base = np.array([r["3 epochs"]["interval_score_95"] for r in result])
    seeds = (base + np.array([r["3 epochs, seed 7"]["interval_score_95"] for r in result])) / 2
    lines = [f"**Serving refit epochs** ({len(result)} served years: every year-end cut of the "
             "bundled series where the LSTM is served, the next year served with adapted "
             "bands; 95 % interval score change, coverage, refit CPU seconds):", "",
             "| refit | score vs 3 epochs: mean (range) | vs the two seeds' mean, p | "
             "coverage 95, 80 | refit core-s |", "|---|---:|---:|---:|---:|"]
    for name in EPOCH_VARIANTS:
        score = np.array([r[name]["interval_score_95"] for r in result])
        change, against = score / base - 1, score / seeds - 1
        p = ttest_1samp(against, 0.0).pvalue if np.ptp(against) > 0 else 1.0
        cov = [np.mean([r[name][c] for r in result]) for c in ("coverage_95", "coverage_80")]
        lines.append(f"| {name} | {100 * change.mean():+.2f} % ({100 * change.min():+.2f} to "
                     f"{100 * change.max():+.2f}) | {100 * against.mean():+.2f} %, {p:.2f} | "
                     f"{cov[0]:.3f}, {cov[1]:.3f} | "
                     f"{np.mean([r[name]['core_seconds'] for r in result]):.2f} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(bench_refit())))
