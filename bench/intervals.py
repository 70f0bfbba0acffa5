"""Forecast quality the product claims: on each bundled series, the calibrated intervals and
the point forecast against the baselines, on the test span and in a walk-forward backtest."""

from __future__ import annotations

import os
from pathlib import Path

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.backtest import walk_forward
from stockcast.evaluation.scorecard import evaluate_model
from stockcast.modeling.recipe import fit_and_calibrate

RESULTS = Path(__file__).resolve().parent / "results"
KEYS = ("skill_rmse_pct", "dm_pvalue_naive", "dm_pvalue_drift", "test_direction_accuracy",
        "always_up_rate", "test_coverage_80", "test_coverage_95", "ewma_coverage_95",
        "test_width_95_bp", "ewma_width_95_bp", "test_interval_score_95",
        "ewma_interval_score_95", "test_pinball", "ewma_pinball")


def bench_intervals(folds: int = 4) -> dict:
    """Default configuration per bundled series: test-span metrics and pooled backtest metrics."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    out = {}
    for ticker in SAMPLE_TICKERS:
        path = sample_path(ticker)
        prices = PriceData(ticker, read_price_file(path), "sample", str(path))
        frame = validate_prices(prices, cfg.window, cfg.validation).frame
        fit = fit_and_calibrate(frame, cfg.window, cfg.model, train)
        evaluation = evaluate_model(fit, ticker, RESULTS / "plots" / ticker)
        backtest = walk_forward(frame, cfg.window, cfg.model, train, folds)
        out[ticker] = {
            "test": {k: evaluation.metrics[k] for k in KEYS},
            "backtest": {k: backtest.aggregate[f"pooled_{k}"] for k in KEYS},
            "folds_beating_ewma": backtest.aggregate["folds_beating_ewma_interval_score"],
            "folds": folds,
        }
    return out


def markdown(result: dict) -> list[str]:
    """The interval table for the README."""
    lines = ["**Forecast quality** (defaults; test span = last 15 %; backtest = 4 walk-forward "
             "folds over it, pooled):", "",
             "| series | span | point skill % | DM p vs persistence | DM p vs drift | "
             "coverage 80 % | coverage 95 % (EWMA) | width 95 % bp (EWMA) | "
             "interval score 95 % (EWMA) | pinball (EWMA) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ticker, r in result.items():
        for span in ("test", "backtest"):
            m = r[span]
            extra = f" ({r['folds_beating_ewma']}/{r['folds']} folds beat EWMA)" if span == "backtest" else ""
            lines.append(
                f"| {ticker} | {span}{extra} | {m['skill_rmse_pct']:+.2f} | {m['dm_pvalue_naive']:.2f} | "
                f"{m['dm_pvalue_drift']:.2f} | {m['test_coverage_80']:.3f} | "
                f"{m['test_coverage_95']:.3f} ({m['ewma_coverage_95']:.3f}) | "
                f"{m['test_width_95_bp']:.0f} ({m['ewma_width_95_bp']:.0f}) | "
                f"{m['test_interval_score_95']:.3f} ({m['ewma_interval_score_95']:.3f}) | "
                f"{m['test_pinball']:.4f} ({m['ewma_pinball']:.4f}) |")
    return [*lines, ""]
