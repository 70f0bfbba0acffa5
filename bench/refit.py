"""Cold or warm serving refit? Each bundled series is cut at 85 %: the evaluation fit and the
serving refits are made on the rows before the cut, a cold refit (fresh weights, the best epoch
count) and warm ones (1 and 3 epochs from the evaluated weights), each served with its widths
aligned to the evaluated ones; all are scored on the held-out rows after the cut, which none saw."""

from __future__ import annotations

import os
import time

import numpy as np

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.scorecard import interval_metrics
from stockcast.modeling.recipe import every_window, fit_and_calibrate, serve_refit
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
                 "warm 1": (1, fit.result.model), "warm 3": (3, fit.result.model)}
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


if __name__ == "__main__":
    print("\n".join(markdown(bench_refit())))
