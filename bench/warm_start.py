"""Nightly warm start against a cold start, on walk-forward nights. At each night (a cut of a
bundled series) "last night's champion" is a cold evaluation fit on the rows before the cut;
tonight (one more row) is fit cold (the default seed, and a second seed for the seed noise)
and warm from the champion's weights (``train.warm_start_epochs``). Each is scored on its own
test span, which none of the weights saw (the champion's fit ended before its validation
span, tonight's test span comes after tonight's validation span)."""

from __future__ import annotations

import os

import numpy as np

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.modeling.recipe import WarmStart, fit_and_calibrate
from stockcast.registry.evaluation_fit import EvaluationFit, rescore
from stockcast.registry.promotion import row_losses

CUTS = (0.85, 0.95)


def _score(fit) -> float:
    """Mean relative 95 % interval score of a fit on its own test span."""
    val_end = fit.data.frame["Date"].iloc[fit.data.bounds.val_end - 1]
    table = rescore(EvaluationFit(fit.forecaster, val_end), fit.data.frame, fit.data.test.origins)
    return float(row_losses(table, "interval_score").mean())


def bench_warm_start(cuts: tuple[float, ...] = CUTS) -> dict:
    """Per series and night: seconds and test-span interval score of tonight's cold fit, a
    reseeded cold fit, and the warm start from last night's champion."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    reseed = train.model_copy(update={"seed": 7})
    out = {}
    for ticker in SAMPLE_TICKERS:
        path = sample_path(ticker)
        full = validate_prices(PriceData(ticker, read_price_file(path), "sample", str(path)),
                               cfg.window, cfg.validation).frame.reset_index(drop=True)
        for cut in cuts:
            n = int(len(full) * cut)
            champion = fit_and_calibrate(full.iloc[:n], cfg.window, cfg.model, train)
            tonight = full.iloc[:n + 1]
            fits = {"cold": fit_and_calibrate(tonight, cfg.window, cfg.model, train),
                    "cold, seed 7": fit_and_calibrate(tonight, cfg.window, cfg.model, reseed),
                    "warm": fit_and_calibrate(tonight, cfg.window, cfg.model, train, None,
                                              WarmStart(champion.result.model, "champion"))}
            out[f"{ticker} @{cut:.0%}"] = {
                name: {"seconds": f.result.seconds, "epochs": len(f.result.history),
                       "interval_score": _score(f)} for name, f in fits.items()}
    return out


def summary(result: dict) -> dict:
    """Median warm/cold time ratio; the warm-cold score change beside the seed noise."""
    rows = list(result.values())
    time_ratio = np.median([r["warm"]["seconds"] / r["cold"]["seconds"] for r in rows])
    epoch_ratio = np.median([r["warm"]["epochs"] / r["cold"]["epochs"] for r in rows])
    change = [r["warm"]["interval_score"] / r["cold"]["interval_score"] - 1 for r in rows]
    noise = [abs(r["cold, seed 7"]["interval_score"] / r["cold"]["interval_score"] - 1)
             for r in rows]
    return {"median_time_ratio": float(time_ratio), "median_epoch_ratio": float(epoch_ratio),
            "mean_change": float(np.mean(change)),
            "mean_seed_noise": float(np.mean(noise)), "max_seed_noise": float(np.max(noise))}


def markdown(result: dict) -> list[str]:
    """The warm-start table for the docs."""
    s = summary(result)
    lines = ["**Nightly warm start** (walk-forward nights; per fit: training seconds, epochs, "
             "mean relative 95 % interval score on its test span):", "",
             "| night | cold | cold, seed 7 | warm from the champion |", "|---|---:|---:|---:|"]
    for night, fits in result.items():
        cells = [f"{f['seconds']:.1f} s, {f['epochs']} ep, {f['interval_score']:.5f}"
                 for f in fits.values()]
        lines.append(f"| {night} | " + " | ".join(cells) + " |")
    lines += ["", f"Warm training time / cold: median {s['median_time_ratio']:.2f} (epochs: "
              f"{s['median_epoch_ratio']:.2f}); interval "
              f"score change warm vs cold {100 * s['mean_change']:+.2f} % on average, seed "
              f"noise {100 * s['mean_seed_noise']:.2f} % on average (max "
              f"{100 * s['max_seed_noise']:.2f} %).", ""]
    return lines


if __name__ == "__main__":
    print("\n".join(markdown(bench_warm_start())))
