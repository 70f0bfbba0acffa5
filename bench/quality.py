"""Time to quality: stockcast's defaults from the raw CSV to a fitted, scored model, against the
seed tutorials' configuration trained by the reference loop, on the GOOG test span."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from reference import seed_pipeline

from stockcast.config import PipelineConfig
from stockcast.data.files import read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.point_metrics import score_forecasts
from stockcast.modeling.recipe import fit_and_calibrate


def our_default_pipeline(path: Path):
    """Our default configuration from the raw CSV to a fitted, scored model."""
    start = time.perf_counter()
    cfg = PipelineConfig()
    prices = PriceData("GOOG", read_price_file(path), "sample", str(path))
    frame = validate_prices(prices, cfg.window, cfg.validation).frame
    train_cfg = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    fit = fit_and_calibrate(frame, cfg.window, cfg.model, train_cfg)
    data, result = fit.data, fit.result
    last = data.last_close(data.test)
    pred = fit.forecaster.forecast_split(data.test, last).point
    metrics = score_forecasts(pred, data.actual_prices(data.test), last)
    return time.perf_counter() - start, result.seconds, metrics, len(result.history)


def bench_quality(repeats: int, seed_repeats: int, seed_epochs: int) -> dict:
    path = sample_path("GOOG")
    ours, seed = [], []
    for i in range(max(repeats, seed_repeats)):
        if i < repeats:
            ours.append(our_default_pipeline(path))
        if i < seed_repeats:
            t0 = time.perf_counter()
            fit, metrics = seed_pipeline(read_price_file(path), seed_epochs)
            seed.append((time.perf_counter() - t0, fit, metrics, seed_epochs))

    def summarise(runs):
        return {"wall_s": statistics.median(r[0] for r in runs),
                "fit_s": statistics.median(r[1] for r in runs),
                "skill_rmse": statistics.median(r[2]["skill_rmse"] for r in runs),
                "test_rmse": statistics.median(r[2]["test_rmse"] for r in runs),
                "naive_rmse": runs[0][2]["naive_rmse"],
                "epochs": statistics.median(r[3] for r in runs)}

    return {"stockcast default (log_return, early stopping)": summarise(ours),
            f"seed (MinMax prices, bs 32, {seed_epochs} epochs, reference loop)": summarise(seed)}


def markdown(quality: dict) -> list[str]:
    lines = ["**Time to quality** (raw CSV to a fitted, scored model):", "",
             "| configuration | wall s | fit s | epochs | test RMSE | naive RMSE | skill_rmse |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {name} | {r['wall_s']:.2f} | {r['fit_s']:.2f} | {r['epochs']:.0f} | "
              f"{r['test_rmse']:.3f} | {r['naive_rmse']:.3f} | {r['skill_rmse']:+.3f} |"
              for name, r in quality.items()]
    return [*lines, ""]
