"""Is a reseeded rerun evidence? The seed-to-seed spread of the promotion loss on the bundled
series, which sets ``promotion.seed_sd``: each series is fitted with the default configuration
under several seeds; every reseeded fit is compared with the first exactly as promotion does
(the champion's evaluation fit re-scored on the candidate's test span: here the same span),
by the plain DM test (no training noise) and by the configured one; and tonight's default is
compared with a champion of the old default (the close alone, a close-to-close scale), a
genuinely better candidate."""

from __future__ import annotations

import os
import statistics

import numpy as np
import pandas as pd

from stockcast.config import PipelineConfig, PromotionConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.scorecard import forecast_table, score_test_span
from stockcast.modeling.recipe import fit_and_calibrate
from stockcast.registry.promotion import RESCORED, compare, row_losses

SEEDS = (42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)


def fit_tables(ticker: str, seeds: tuple[int, ...] = SEEDS) -> dict[str, pd.DataFrame]:
    """The test-span forecast tables of one series: the default under each seed
    (``seed<N>``) and the close-only champion (``close_only``)."""
    cfg = PipelineConfig()
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    path = sample_path(ticker)
    frame = validate_prices(PriceData(ticker, read_price_file(path), "sample", str(path)),
                            cfg.window, cfg.validation).frame
    variants = {f"seed{s}": (cfg.window, cfg.model, train.model_copy(update={"seed": s}))
                for s in seeds}
    variants["close_only"] = (cfg.window.model_copy(update={"features": ("Close",)}),
                              cfg.model.model_copy(update={"volatility": "close"}), train)
    tables = {}
    for name, (window, model, fit_cfg) in variants.items():
        fit = fit_and_calibrate(frame, window, model, fit_cfg)
        span = score_test_span(fit)
        tables[name] = forecast_table(fit.data.frame["Date"], fit.data.test.origins,
                                      span.forecast, span.actual)
    return tables


def spread(tables: dict[str, pd.DataFrame], cfg: PromotionConfig) -> dict:
    """One series' reseeded comparisons and the better candidate's, from ``fit_tables``."""
    seeds = [k for k in tables if k.startswith("seed")]
    first = tables[seeds[0]]
    losses = np.array([float(row_losses(tables[k], cfg.loss).mean()) for k in seeds])
    plain = cfg.model_copy(update={"seed_sd": 0.0, "margin": 0.0})
    rows = []
    for k in seeds[1:]:
        at0, now = (compare(tables[k], first, c, "1", RESCORED) for c in (plain, cfg))
        rows.append({"seed": int(k[4:]), "relative_change": float(
            row_losses(tables[k], cfg.loss).mean() / losses[0] - 1),
            "p_plain": at0.pvalue, "promoted_plain": at0.promote,
            "p": now.pvalue, "promoted": now.promote})
    better = [compare(tables[k], tables["close_only"], cfg, "1", RESCORED) for k in seeds]
    return {"seed_sd": float(losses.std(ddof=1) / losses.mean()), "reseeded": rows,
            "richer": {"relative_change": better[0].candidate_loss / better[0].champion_loss - 1,
                       "p": better[0].pvalue, "promoted": better[0].promote,
                       "promoted_any_seed": sum(d.promote for d in better),
                       "seeds": len(better)}}


def seed_spread(seeds: tuple[int, ...] = SEEDS, tables: dict | None = None) -> dict:
    """Per series: the spread and the comparisons (``tables``: already fitted, per ticker)."""
    cfg = PipelineConfig().promotion
    series = {t: spread((tables or {}).get(t) or fit_tables(t, seeds), cfg) for t in SAMPLE_TICKERS}
    pooled = float(np.sqrt(np.mean([s["seed_sd"] ** 2 for s in series.values()])))
    return {"seed_sd": cfg.seed_sd, "measured_seed_sd": pooled, "margin": cfg.margin,
            "seeds": list(seeds), "series": series}


def markdown(result: dict) -> list[str]:
    """The seed-spread table for the docs."""
    lines = [f"**Seed spread** (default configuration, seeds {result['seeds'][1:]} against "
             f"{result['seeds'][0]}, promotion loss on the test span; the loss's sd across "
             f"seeds, pooled: {result['measured_seed_sd']:.2%} per fit, configured "
             f"`seed_sd` {result['seed_sd']:.3g}):", "",
             "| series | loss sd across seeds | reseeded: relative loss change, median (range) "
             "| promoted by the plain DM test (min p) | promoted with the training noise (min p) "
             "| default vs a close-only champion: change, p, promoted (all seeds) |",
             "|---|---:|---|---:|---:|---|"]
    for ticker, res in result["series"].items():
        rows, rich = res["reseeded"], res["richer"]
        changes = [r["relative_change"] * 100 for r in rows]
        lines.append(
            f"| {ticker} | {res['seed_sd']:.2%} | {statistics.median(changes):+.2f} % "
            f"({min(changes):+.2f} to {max(changes):+.2f} %) | "
            f"{sum(r['promoted_plain'] for r in rows)}/{len(rows)} "
            f"({min(r['p_plain'] for r in rows):.3f}) | "
            f"{sum(r['promoted'] for r in rows)}/{len(rows)} ({min(r['p'] for r in rows):.3f}) | "
            f"{rich['relative_change'] * 100:+.2f} %, p {rich['p']:.3g}, "
            f"{'yes' if rich['promoted'] else 'no'} ({rich['promoted_any_seed']}/"
            f"{rich['seeds']}) |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(seed_spread())))
