"""Is a reseeded rerun evidence? The seed-to-seed spread of the promotion loss on the bundled
series, which sets ``promotion.margin``: each series is fitted with the default configuration
under several seeds; every reseeded fit is compared with the first exactly as promotion does
(the champion's evaluation fit re-scored on the candidate's test span: here the same span),
at margin 0 and at the configured margin."""

from __future__ import annotations

import os
import statistics

from stockcast.config import PipelineConfig, PromotionConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.scorecard import forecast_table, score_test_span
from stockcast.modeling.recipe import fit_and_calibrate
from stockcast.registry.promotion import RESCORED, compare, row_losses


def seed_spread(seeds: tuple[int, ...] = (42, 1, 2, 3, 4, 5), margin: float | None = None) -> dict:
    """Per series: the relative loss difference of each reseeded fit against the first, and the
    promotion p-values at margin 0 and at ``margin`` (default: the configured one)."""
    cfg = PipelineConfig()
    margin = cfg.promotion.margin if margin is None else margin
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    out = {}
    for ticker in SAMPLE_TICKERS:
        path = sample_path(ticker)
        frame = validate_prices(PriceData(ticker, read_price_file(path), "sample", str(path)),
                                cfg.window, cfg.validation).frame
        tables = []
        for seed in seeds:
            fit = fit_and_calibrate(frame, cfg.window, cfg.model,
                                    train.model_copy(update={"seed": seed}))
            span = score_test_span(fit)
            tables.append(forecast_table(fit.data.frame["Date"], fit.data.test.origins,
                                         span.forecast, span.actual))
        first = tables[0]
        base = float(row_losses(first, cfg.promotion.loss).mean())
        # A genuinely better candidate: tonight's default (range inputs, range-based scale)
        # against a champion of the old default (the close alone, close-to-close EWMA).
        close_only = fit_and_calibrate(
            frame, cfg.window.model_copy(update={"features": ("Close",)}),
            cfg.model.model_copy(update={"volatility": "close"}), train)
        cspan = score_test_span(close_only)
        ctable = forecast_table(close_only.data.frame["Date"], close_only.data.test.origins,
                                cspan.forecast, cspan.actual)
        bdecision = compare(first, ctable, PromotionConfig(margin=margin), "1", RESCORED)
        champion_loss = float(row_losses(ctable, cfg.promotion.loss).mean())
        rows = []
        for seed, table in zip(seeds[1:], tables[1:], strict=True):
            loss = float(row_losses(table, cfg.promotion.loss).mean())
            at0 = compare(table, first, PromotionConfig(margin=0.0), "1", RESCORED)
            at_m = compare(table, first, PromotionConfig(margin=margin), "1", RESCORED)
            rows.append({"seed": seed, "relative_change": loss / base - 1,
                         "p_margin_0": at0.pvalue, "promoted_margin_0": at0.promote,
                         "p_margin": at_m.pvalue, "promoted_margin": at_m.promote})
        out[ticker] = {"reseeded": rows, "richer": {
            "relative_change": base / champion_loss - 1,
            "p_margin": bdecision.pvalue, "promoted_margin": bdecision.promote}}
    return {"margin": margin, "seeds": list(seeds), "series": out}


def markdown(result: dict) -> list[str]:
    """The seed-spread table for the docs."""
    lines = [f"**Seed spread** (default configuration, seeds {result['seeds'][1:]} against "
             f"{result['seeds'][0]}, promotion loss on the test span):", "",
             "| series | reseeded: relative loss change, median (range) | promoted at margin 0 "
             f"(min p) | promoted at margin {result['margin']:.3g} | default vs a close-only "
             "champion: change, p, promoted |", "|---|---|---:|---:|---|"]
    for ticker, res in result["series"].items():
        rows, rich = res["reseeded"], res["richer"]
        changes = [r["relative_change"] * 100 for r in rows]
        lines.append(
            f"| {ticker} | {statistics.median(changes):+.2f} % ({min(changes):+.2f} to "
            f"{max(changes):+.2f} %) | {sum(r['promoted_margin_0'] for r in rows)}/{len(rows)} "
            f"({min(r['p_margin_0'] for r in rows):.3f}) | "
            f"{sum(r['promoted_margin'] for r in rows)}/{len(rows)} | "
            f"{rich['relative_change'] * 100:+.2f} %, p {rich['p_margin']:.3g}, "
            f"{'yes' if rich['promoted_margin'] else 'no'} |")
    return lines + [""]


if __name__ == "__main__":
    import sys

    margin = float(sys.argv[1]) if len(sys.argv) > 1 else None
    print("\n".join(markdown(seed_spread(margin=margin))))
