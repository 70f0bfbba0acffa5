"""Scale: a portfolio of N tickers through the real training flow with the embedded stores.

The tickers are synthetic but made of real returns: for each, 10 years of daily log returns
are drawn in 20-day blocks (a block bootstrap, which keeps volatility clusters) from the
bundled GOOG, AAPL and IBM histories, seeded per ticker, and written to the project's cache as
if downloaded. The flow then reads them with ``--source cache``."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.config import PipelineConfig
from stockcast.data.cache import write_cache
from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path

BLOCK = 20


def synthetic_history(seed: int, days: int = 2520) -> pd.DataFrame:
    """Real daily returns of the samples, block-bootstrapped into a new 10-year history."""
    rng = np.random.default_rng(seed)
    returns = [np.diff(np.log(read_price_file(sample_path(t))["Close"].to_numpy()))
               for t in SAMPLE_TICKERS]
    pieces = []
    while sum(map(len, pieces)) < days:
        r = returns[rng.integers(len(returns))]
        start = rng.integers(0, len(r) - BLOCK)
        pieces.append(r[start:start + BLOCK])
    r = np.concatenate(pieces)[:days]
    close = 50 * np.exp(np.cumsum(r))
    open_ = np.r_[close[0], close[:-1]]
    spread = np.abs(rng.normal(0, 0.005, days))
    return pd.DataFrame({"Date": pd.bdate_range("2016-01-04", periods=days), "Open": open_,
                         "High": np.maximum(open_, close) * (1 + spread),
                         "Low": np.minimum(open_, close) * (1 - spread), "Close": close,
                         "Volume": rng.integers(1e6, 5e6, days).astype(float)})


def run_portfolio(n: int, runner: str, epochs: int) -> dict:
    """Train ``n`` synthetic tickers in one flow run; wall time and where it went."""
    from flows.train import train_pipeline

    with tempfile.TemporaryDirectory() as home:
        os.environ["STOCKCAST_HOME"] = home
        tickers = [f"SYN{i:03d}" for i in range(n)]
        for i, ticker in enumerate(tickers):
            write_cache(Path(home) / "data", ticker, synthetic_history(i))
        cfg = PipelineConfig.model_validate({
            "tickers": tickers,
            "data": {"source": "cache", "max_staleness_days": 100_000},
            "train": {"epochs": epochs, "patience": epochs, "progress": False},
            "orchestration": {"task_runner": runner, "max_workers": 2}})
        started = time.perf_counter()
        summary = train_pipeline(config=cfg)
        wall = time.perf_counter() - started
    assert len(summary) == n
    # Training inside the flow is timed while other tickers' tasks share the cores, so it is
    # measured apart: the same fit + refit for a few tickers, one at a time, no orchestration.
    train_s = training_only(epochs, min(n, 4))
    per_ticker = 2 * wall / n  # two tickers at a time on two cores
    return {"tickers": n, "runner": runner, "epochs": epochs, "wall_s": wall,
            "wall_s_per_ticker": wall / n, "train_s_per_ticker": train_s,
            "other_s_per_ticker": per_ticker - train_s}


def training_only(epochs: int, tickers: int) -> float:
    """Mean seconds of the evaluation fit plus the serving refit per synthetic ticker, alone
    on one core (what the flow's two workers each do per ticker)."""
    from stockcast.modeling.recipe import fit_and_calibrate, fit_for_serving

    cfg = PipelineConfig.model_validate({"train": {"epochs": epochs, "patience": epochs,
                                                   "progress": False, "threads": 1}})
    total = 0.0
    for i in range(tickers):
        frame = synthetic_history(i)
        started = time.perf_counter()
        fit = fit_and_calibrate(frame, cfg.window, cfg.model, cfg.train)
        fit_for_serving(fit, cfg.model, cfg.train)
        total += time.perf_counter() - started
    return total / tickers


def bench_portfolio(sizes=(12, 50), epochs: int = 3) -> list[dict]:
    """The portfolio case for ``make bench``: thread runner for each size, Dask for the first."""
    rows = [run_portfolio(n, "threads", epochs) for n in sizes]
    rows.append(run_portfolio(sizes[0], "dask", epochs))
    return rows


def markdown(rows: list[dict]) -> list[str]:
    """The portfolio table for the README."""
    lines = ["**Portfolio** (synthetic tickers from block-bootstrapped real returns, "
             f"{rows[0]['epochs']} epochs each so that orchestration and tracking show; "
             "2 tickers at a time):", "",
             "| tickers | runner | wall s | wall s / ticker | training s / ticker (one core) | "
             "everything else s / ticker (one core) |", "|---:|---|---:|---:|---:|---:|"]
    lines += [f"| {r['tickers']} | {r['runner']} | {r['wall_s']:.1f} | "
              f"{r['wall_s_per_ticker']:.2f} | {r['train_s_per_ticker']:.2f} | "
              f"{r['other_s_per_ticker']:.2f} |" for r in rows]
    return [*lines, ""]
