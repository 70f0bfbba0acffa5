"""Forecast quality the product claims: on each bundled series, the calibrated LSTM intervals
against the volatility models a risk analyst tries first (EWMA close-to-close raw and
calibrated, the range-based EWMA, HAR, GARCH(1,1)-t), on the test span and pooled over a
walk-forward backtest; and at horizon 5, per step. Defaults throughout: nothing is tuned to
these series."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.backtest import walk_forward
from stockcast.evaluation.scorecard import interval_metrics, score_test_span
from stockcast.modeling.global_fit import fit_global
from stockcast.modeling.recipe import fit_and_calibrate

RESULTS = Path(__file__).resolve().parent / "results"
FORECASTERS = {"test": "LSTM", "ewma": "EWMA close-to-close, raw",
               "ewmacal": "EWMA close-to-close, calibrated", "rangevol": "EWMA range, calibrated",
               "har": "HAR range, calibrated", "garch": "GARCH(1,1)-t, calibrated"}
COLUMNS = ("coverage_80", "coverage_95", "width_95_bp", "interval_score_95", "pinball")
POINT = ("skill_rmse_pct", "dm_pvalue_naive", "dm_pvalue_drift")


def _row(metrics: dict, prefix: str) -> dict:
    row = {c: metrics[f"{prefix}_{c}"] for c in COLUMNS}
    row["dm_p_lstm_better"] = None if prefix == "test" else metrics[f"dm_pvalue_is95_{prefix}"]
    return row


def _per_step(span) -> dict:
    """Horizon > 1: coverage and interval score of the LSTM and the EWMA band at each step."""
    out = {}
    for name, q in (("LSTM", span.forecast.quantiles), ("EWMA", span.ewma_quantiles)):
        steps = []
        for k in range(span.actual.shape[1]):
            m = interval_metrics("s", q[:, k:k + 1], span.forecast.levels,
                                 span.actual[:, k:k + 1], span.last)
            steps.append({c: m[f"s_{c}"] for c in ("coverage_80", "coverage_95",
                                                   "interval_score_95")})
        out[name] = steps
    return out


def bench_intervals(folds: int = 4, horizon: int = 5) -> dict:
    """Per bundled series: each forecaster on the test span and pooled over ``folds``
    walk-forward folds (defaults, horizon 1), and the LSTM and EWMA per step at ``horizon``."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    out = {}
    for ticker in SAMPLE_TICKERS:
        path = sample_path(ticker)
        prices = PriceData(ticker, read_price_file(path), "sample", str(path))
        frame = validate_prices(prices, cfg.window, cfg.validation).frame
        span = score_test_span(fit_and_calibrate(frame, cfg.window, cfg.model, train), ticker)
        pooled = walk_forward(frame, cfg.window, cfg.model, train, folds).aggregate
        pooled = {k.removeprefix("pooled_"): v for k, v in pooled.items()}
        window = cfg.window.model_copy(update={"horizon": horizon})
        multi = score_test_span(fit_and_calibrate(frame, window, cfg.model, train), ticker)
        out[ticker] = {
            "test": {p: _row(span.metrics, p) for p in FORECASTERS},
            "backtest": {p: _row(pooled, p) for p in FORECASTERS},
            "point": {"test": {k: span.metrics[k] for k in POINT},
                      "backtest": {k: pooled[k] for k in POINT}},
            "horizon": horizon, "steps": _per_step(multi), "folds": folds,
            "windows": int(len(span.actual)),
        }
    return out


def bench_global() -> dict:
    """One network for the three bundled series against one per series: each series' test-span
    95 % interval score and coverage, and the training seconds (all fits, one after another)."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    frames = {}
    for ticker in SAMPLE_TICKERS:
        path = sample_path(ticker)
        frames[ticker] = validate_prices(PriceData(ticker, read_price_file(path), "sample",
                                                   str(path)), cfg.window, cfg.validation).frame
    out: dict = {"series": {}}
    per_ticker_s = 0.0
    for ticker, frame in frames.items():
        fit = fit_and_calibrate(frame, cfg.window, cfg.model, train)
        per_ticker_s += fit.result.seconds
        out["series"][ticker] = {"ticker": _row(score_test_span(fit, ticker).metrics, "test")}
    fits = fit_global(frames, {}, cfg.window, cfg.model, train)
    for ticker, fit in fits.items():
        out["series"][ticker]["global"] = _row(score_test_span(fit, ticker).metrics, "test")
    out["per_ticker_train_s"] = per_ticker_s
    out["global_train_s"] = next(iter(fits.values())).result.seconds
    out["global_epochs"] = next(iter(fits.values())).result.best_epoch
    return out


def global_markdown(result: dict) -> list[str]:
    """Global against per-ticker, for the docs."""
    lines = ["**One network for all series** (`model.scope: global`, the three bundled series; "
             "test span; training seconds summed over the per-ticker fits):", "",
             "| series | per ticker: interval score 95, coverage 95 | global: interval score "
             "95, coverage 95 |", "|---|---:|---:|"]
    for ticker, r in result["series"].items():
        lines.append(f"| {ticker} | {r['ticker']['interval_score_95']:.3f}, "
                     f"{r['ticker']['coverage_95']:.3f} | {r['global']['interval_score_95']:.3f}"
                     f", {r['global']['coverage_95']:.3f} |")
    lines += ["", f"Training: per ticker {result['per_ticker_train_s']:.1f} s in all, global "
              f"{result['global_train_s']:.1f} s (best epoch {result['global_epochs']}).", ""]
    return lines


def _fmt(value, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def markdown(result: dict) -> list[str]:
    """The interval tables for docs/benchmarks.md."""
    lines = ["**Intervals against the volatility models** (defaults, horizon 1; test = last "
             "15 %; backtest = 4 walk-forward folds, pooled; every baseline fit on the same "
             "training rows, calibrated baselines split-conformal on the same validation span; "
             "DM p: one-sided, H1 the LSTM's 95 % interval score is lower):", "",
             "| series | span | forecaster | coverage 80 | coverage 95 | width 95 bp | "
             "interval score 95 | pinball | DM p (LSTM better) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for ticker, r in result.items():
        for span in ("test", "backtest"):
            for prefix, label in FORECASTERS.items():
                m = r[span][prefix]
                lines.append(
                    f"| {ticker} | {span} | {label} | {m['coverage_80']:.3f} | "
                    f"{m['coverage_95']:.3f} | {m['width_95_bp']:.0f} | "
                    f"{m['interval_score_95']:.3f} | {m['pinball']:.4f} | "
                    f"{_fmt(m['dm_p_lstm_better'], '.3f')} |")
    lines += ["", "**The point forecast** (the LSTM's; skill = 100 x (1 - RMSE / persistence's); "
              "one-sided DM p of \"beats persistence\" / \"beats a constant drift\"):", "",
              "| series | span | point skill % | DM p vs persistence | DM p vs drift |",
              "|---|---|---:|---:|---:|"]
    for ticker, r in result.items():
        for span in ("test", "backtest"):
            m = r["point"][span]
            lines.append(f"| {ticker} | {span} | {m['skill_rmse_pct']:+.2f} | "
                         f"{m['dm_pvalue_naive']:.2f} | {m['dm_pvalue_drift']:.2f} |")
    lines += ["", f"**Horizon {next(iter(result.values()))['horizon']}, per step** (test span; "
              "LSTM / EWMA band raw):", "",
              "| series | step | coverage 80 | coverage 95 | interval score 95 |",
              "|---|---:|---:|---:|---:|"]
    for ticker, r in result.items():
        pairs = zip(r["steps"]["LSTM"], r["steps"]["EWMA"], strict=True)
        for k, (ours, ewma) in enumerate(pairs, start=1):
            lines.append(f"| {ticker} | {k} | {ours['coverage_80']:.3f} / {ewma['coverage_80']:.3f}"
                         f" | {ours['coverage_95']:.3f} / {ewma['coverage_95']:.3f} | "
                         f"{ours['interval_score_95']:.3f} / {ewma['interval_score_95']:.3f} |")
    return [*lines, ""]
