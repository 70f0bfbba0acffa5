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


def stage_seconds(flow_run_id) -> dict[str, float]:
    """Seconds per stage (task runs ``<stage>-<TICKER>``) summed over a flow run's tickers,
    read from Prefect's API a page at a time."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list:
        runs, page = [], 200
        async with get_client() as client:
            while True:
                batch = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[flow_run_id])), limit=page, offset=len(runs))
                runs += batch
                if len(batch) < page:
                    return runs

    totals: dict[str, float] = {}
    for run in asyncio.run(read()):
        stage = run.name.split("-SYN")[0]
        totals[stage] = totals.get(stage, 0.0) + run.total_run_time.total_seconds()
    return totals


def run_nights(n: int, runner: str, nights: int = 2, train: dict | None = None) -> list[dict]:
    """``nights`` nightly runs of ``n`` synthetic tickers through the training flow, each
    night one more day of prices (so from the second night on, fits warm-start from the
    champions). Per night: wall seconds, the training seconds the flow measured (fits and
    refits), and what is left per ticker of the two cores' time (orchestration, windows,
    evaluation, plots, tracking, registry)."""
    from flows.train import train_pipeline

    rows = []
    with tempfile.TemporaryDirectory() as home:
        os.environ["STOCKCAST_HOME"] = home
        tickers = [f"SYN{i:03d}" for i in range(n)]
        histories = {t: synthetic_history(i, 2520 + nights) for i, t in enumerate(tickers)}
        workers = 2
        for night in range(1, nights + 1):
            for ticker, history in histories.items():
                write_cache(Path(home) / "data", ticker, history.iloc[:2520 + night])
            cfg = PipelineConfig.model_validate({
                "tickers": tickers,
                "data": {"source": "cache", "max_staleness_days": 100_000},
                "train": {"progress": False, **(train or {})},
                "orchestration": {"task_runner": runner, "max_workers": workers}})
            started = time.perf_counter()
            state = train_pipeline(config=cfg, return_state=True)
            wall = time.perf_counter() - started
            summary = state.result()
            assert len(summary) == n
            training = sum(s["train_seconds"] for s in summary.values())
            rows.append({"tickers": n, "runner": runner, "night": night, "wall_s": wall,
                         "slots": workers,
                         "train_s_per_ticker": training / n,
                         "other_s_per_ticker": (workers * wall - training) / n,
                         "warm": sum(not s["warm_start_from"].startswith("scratch")
                                     for s in summary.values()),
                         "stages_s_per_ticker": {k: v / n for k, v in sorted(stage_seconds(
                             state.state_details.flow_run_id).items(), key=lambda kv: -kv[1])}})
    return rows


def bench_portfolio(size: int = 100, compare: int = 20) -> list[dict]:
    """The portfolio case for ``make bench``: ``size`` tickers with the default training on
    the thread runner, two nights; then ``compare`` tickers (20: #33's small cold night) on
    the thread runner and on a local Dask cluster (two worker processes) side by side."""
    rows = run_nights(size, "threads")
    for runner in ("threads", "dask"):
        rows += run_nights(compare, runner)
    return rows


def _training_floor(row: dict) -> float:
    """The night's trainings alone in its training slots (one per core), perfectly packed: the
    floor of its wall time at the trainer's measured speed (#33's targets: 600 s for 100 cold
    tickers, 140 s for 20)."""
    return row["train_s_per_ticker"] * row["tickers"] / row.get("slots", 2)


def markdown(rows: list[dict]) -> list[str]:
    """The portfolio table for the docs."""
    lines = ["**Portfolio** (synthetic tickers from block-bootstrapped real returns, the "
             "default training, 2 tickers at a time on 2 cores; night 2 has one more day, so "
             "its fits warm-start from night 1's champions):", "",
             "| tickers | runner | night | warm starts | wall s | the trainings alone in "
             "their slots, s | training s / ticker | everything else s / ticker "
             "(core-seconds) |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['tickers']} | {r['runner']} | {r['night']} | {r['warm']} | "
              f"{r['wall_s']:.1f} | {_training_floor(r):.1f} | "
              f"{r['train_s_per_ticker']:.2f} | {r['other_s_per_ticker']:.2f} |" for r in rows]
    lines += ["", "Task seconds per ticker, by stage (Prefect's task-run times, summed over "
              "the tickers; the thread runner's rows):", ""]
    lines += [f"- {r['tickers']} tickers, night {r['night']}: " + ", ".join(
        f"{k} {v:.2f}" for k, v in r["stages_s_per_ticker"].items() if v >= 0.005)
        for r in rows if r.get("stages_s_per_ticker")]
    return [*lines, ""]


if __name__ == "__main__":
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    print("\n".join(markdown(bench_portfolio(size))), flush=True)
