"""Walk-forward evidence on the bundled series: does pooling three out-of-sample folds find a
consistently better model that tonight's span alone misses, and does it still refuse a rerun?
And what would five folds (``promotion.walk_forward_folds: 5``) add?

Each series is cut into five folds ending at its last date (``earlier_folds.WalkForward``;
the default's three are the newest three); the default configuration is fit cold on each fold
under several seeds. Every ordered pair of seeds (i, j) is one night: the candidate is seed i's fits,
the champion seed j's, either as they are (a rerun: nothing to find) or with their 95 % bands
widened until their interval score is 3 % worse on every fold (a consistently worse model,
each fold's fits still carrying their own training noise). Each night is decided by
``promotion.compare`` on tonight's span alone, on the newest three folds pooled (the default)
and on all five (with ``FIVE_FOLD_SEED_SD``, the five folds' own seed spread). The serving
choice is measured on the same fits: the LSTM against the best calibrated baseline, per fold
and pooled. Costs: the seconds per fold fit.
"""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pandas as pd

from stockcast.config import PipelineConfig
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.earlier_folds import (
    Recipe,
    WalkForward,
    baseline_against_lstm,
    pool,
    test_span_table,
)
from stockcast.modeling.volatility_forecasters import BY_PREFIX
from stockcast.registry.promotion import compare, row_losses

SEEDS = (42, 1, 2, 3, 4, 5)
EDGE = 0.03
FOLDS = 5  # fit; the default pools the newest three (promotion.walk_forward_folds)
# The relative seed spread of a fold fit's loss over all five folds of the three series (RMS of
# the fifteen, 1.93 % in session 19), rounded up like the default three folds' 0.018.
FIVE_FOLD_SEED_SD = 0.02


def fold_fits(ticker: str, seeds: tuple[int, ...] = SEEDS) -> dict:
    """Per seed, the test-span tables of the default fit on each fold (oldest first), the
    choice's losses of seed 42's folds, and the seconds per fit."""
    cfg = PipelineConfig()
    path = sample_path(ticker)
    frame = validate_prices(PriceData(ticker, read_price_file(path), "sample", str(path)),
                            cfg.window, cfg.validation).frame
    train = cfg.train.model_copy(update={"threads": os.cpu_count() or 1, "progress": False})
    walk = WalkForward(Recipe(cfg.window, cfg.model, train), folds=FOLDS)
    ends = [*walk.ends(len(frame)), len(frame)]
    tables, seconds, choice = {}, [], {}
    for seed in seeds:
        recipe = Recipe(cfg.window, cfg.model, train.model_copy(update={"seed": seed}))
        tables[seed] = []
        for end in ends:
            start = time.perf_counter()
            fit = recipe.fit(frame, end)
            seconds.append(time.perf_counter() - start)
            tables[seed].append(test_span_table(fit))
            if seed == seeds[0]:
                for prefix, model in BY_PREFIX.items():
                    choice.setdefault(prefix, []).append(baseline_against_lstm(fit, model))
    return {"tables": tables, "seconds": seconds, "choice": choice, "rows": len(frame),
            "ends": ends}


def widened(table: pd.DataFrame, w: float) -> pd.DataFrame:
    """The forecasts with every quantile's log distance from the median times ``w``."""
    out = table.copy()
    median = np.log(table["q0.5"])
    for c in [c for c in table.columns if c.startswith("q") and c != "q0.5"]:
        out[c] = np.exp(median + w * (np.log(table[c]) - median))
    return out


def worse_by(table: pd.DataFrame, edge: float, loss: str) -> pd.DataFrame:
    """``table`` widened until its mean loss is ``edge`` above its own (bisection on w > 1,
    from where widening starts to cost)."""
    base = float(row_losses(table, loss).mean())
    ws = np.linspace(1.0, 3.0, 81)
    change = np.array([row_losses(widened(table, w), loss).mean() / base - 1 for w in ws])
    lo = ws[int(np.argmin(change))]
    hi = next(w for w, c in zip(ws, change, strict=True) if w > lo and c >= edge)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = ((mid, hi) if row_losses(widened(table, mid), loss).mean() / base - 1 < edge
                  else (lo, mid))
    return widened(table, hi)


def nights(fits: dict, edge: float = EDGE) -> dict:
    """Every ordered pair of seeds decided on tonight's span, on the default's three folds
    pooled and on all five."""
    cfg = PipelineConfig().promotion
    five = cfg.model_copy(update={"walk_forward_seed_sd": FIVE_FOLD_SEED_SD})
    tables = fits["tables"]
    worse = {s: [worse_by(t, edge, cfg.loss) for t in folds] for s, folds in tables.items()}
    out = {}
    for label, champions in (("rerun", tables), ("worse by 3 %", worse)):
        found: dict[str, list] = {"alone": [], "pooled": [], "pooled5": []}
        for i, j in itertools.permutations(tables, 2):
            for key, k, rule in (("alone", 1, cfg), ("pooled", cfg.walk_forward_folds, cfg),
                                 ("pooled5", FOLDS, five)):
                cand, champ = tables[i][-k:], champions[j][-k:]
                found[key].append(compare(cand[-1], champ[-1], rule, "1",
                                          earlier=list(zip(cand[:-1], champ[:-1], strict=True))))
        out[label] = {"nights": len(found["alone"])}
        for key, decisions in found.items():
            out[label] |= {key: sum(d.promote for d in decisions),
                           f"median_p_{key}": float(np.median([d.pvalue for d in decisions])),
                           f"pairs_{key}": decisions[0].pairs}
    return out


def seed_spread(fits: dict) -> list[float]:
    """Each fold's relative sd of the fit's loss across the seeds (oldest fold first)."""
    loss = PipelineConfig().promotion.loss
    losses = np.array([[row_losses(t, loss).mean() for t in folds]
                       for folds in fits["tables"].values()])
    return (losses.std(axis=0, ddof=1) / losses.mean(axis=0)).tolist()


def choice(fits: dict) -> dict:
    """The serving choice on seed 42's folds: the best baseline on tonight's span, its DM p
    there, and pooled over the folds (one LSTM fit's training noise per fold)."""
    seed_sd = PipelineConfig().promotion.seed_sd
    folds = PipelineConfig().promotion.walk_forward_folds  # the default's newest folds
    per = {p: spans[-folds:] for p, spans in fits["choice"].items()}
    tonight = {p: float(np.mean(spans[-1][0]) / np.mean(spans[-1][1]) - 1) for p, spans in per.items()}
    best = min(tonight, key=tonight.get)
    alone = pool(per[best][-1:], 1, 0.0, fits=1)
    pooled = pool(per[best], 1, seed_sd, fits=1)
    return {"best": BY_PREFIX[best].name, "changes": pooled.changes, "p_alone": alone.result.pvalue,
            "p_pooled": pooled.result.pvalue}


def bench_walk_forward(tickers: tuple[str, ...] = SAMPLE_TICKERS) -> dict:
    out = {}
    for ticker in tickers:
        fits = fold_fits(ticker)
        out[ticker] = {"rows": fits["rows"], "ends": fits["ends"],
                       "seconds_per_fit": float(np.mean(fits["seconds"])),
                       "nights": nights(fits), "choice": choice(fits),
                       "seed_spread": seed_spread(fits)}
        print(ticker, out[ticker], flush=True)
    return out


def markdown(result: dict) -> list[str]:
    lines = ["| series (rows) | night | nights | promoted on tonight's span alone | promoted on "
             "3 folds pooled (the default) | on 5 folds pooled | median p alone / 3 / 5 | "
             "pairs alone / 3 / 5 |", "|---|---|---:|---:|---:|---:|---|---|"]
    for ticker, res in result.items():
        for label, n in res["nights"].items():
            lines.append(f"| {ticker} ({res['rows']}) | {label} | {n['nights']} | {n['alone']} | "
                         f"{n['pooled']} | {n['pooled5']} | {n['median_p_alone']:.3f} / "
                         f"{n['median_p_pooled']:.3f} / {n['median_p_pooled5']:.3f} | "
                         f"{n['pairs_alone']} / {n['pairs_pooled']} / {n['pairs_pooled5']} |")
    lines += ["", "Seed spread of a fit's loss per fold (relative sd across the seeds, oldest "
              "fold first): " + "; ".join(
                  f"{t} " + " / ".join(f"{100 * x:.2f}" for x in r["seed_spread"]) + " %"
                  for t, r in result.items())]
    lines += ["", "| series | best baseline tonight | LSTM vs it per fold (baseline's change) "
              "| p alone | p pooled | seconds per fold fit |", "|---|---|---|---:|---:|---:|"]
    for ticker, res in result.items():
        c = res["choice"]
        per = ", ".join(f"{100 * x:+.1f} %" for x in c["changes"])
        lines.append(f"| {ticker} | {c['best']} | {per} | {c['p_alone']:.3f} | "
                     f"{c['p_pooled']:.3f} | {res['seconds_per_fit']:.1f} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(bench_walk_forward())))
