"""Test helpers: seeded synthetic prices, a tiny fast config, the pipeline's stages in order,
and a stand-in for yfinance.Ticker."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

TINY = {
    "window": {"sequence_length": 10, "min_windows_per_split": 5},
    "model": {"hidden_size": 8, "num_layers": 1},
    # Pinned to the CPU: a CUDA host would otherwise train in bf16 against CPU-tuned tolerances.
    "train": {"epochs": 2, "batch_size": 64, "progress": False, "threads": 1, "device": "cpu"},
    # The mocked Yahoo serves the bundled 2013 history: not stale for these tests.
    "data": {"retries": 0, "retry_backoff_seconds": 0, "max_staleness_days": 100_000},
}


def make_prices(n: int = 300, seed: int = 0, start: str = "2015-01-02", drift: float = 3e-4,
                vol: float = 0.012, price: float = 100.0) -> pd.DataFrame:
    """A seeded, valid OHLCV frame (geometric random walk) with business-day dates."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(drift, vol, n)))
    open_ = np.r_[price, close[:-1]] * np.exp(rng.normal(0, vol / 3, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, vol, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, vol, n))
    volume = rng.integers(1_000_000, 5_000_000, n)
    return pd.DataFrame({"Date": pd.bdate_range(start, periods=n), "Open": open_, "High": high,
                         "Low": low, "Close": close, "Volume": volume})


class FakeTicker:
    """Stands in for ``yfinance.Ticker``: ``history`` returns what yfinance would, or raises."""

    frames: dict[str, pd.DataFrame] = {}
    error: Exception | None = None
    calls: list[dict] = []

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol

    def history(self, **kwargs) -> pd.DataFrame:
        FakeTicker.calls.append({"symbol": self.symbol, **kwargs})
        if FakeTicker.error is not None:
            raise FakeTicker.error
        frame = FakeTicker.frames.get(self.symbol)
        if frame is None:
            return pd.DataFrame()
        df = frame.copy()
        start = kwargs.get("start")
        if start is not None:
            df = df[df["Date"] >= pd.Timestamp(start)]
        end = kwargs.get("end")
        if end is not None:
            df = df[df["Date"] < pd.Timestamp(end)]
        # yfinance: tz-aware DatetimeIndex named Date, auto-adjusted OHLCV columns.
        idx = pd.DatetimeIndex(df["Date"]).tz_localize("America/New_York")
        return df.drop(columns="Date").set_index(idx.rename("Date"))


def predictable_prices(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Prices whose returns follow a sine: a model can beat persistence, by degrees."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    r = 0.02 * np.sin(t / 4.0) + rng.normal(0, 0.004, n)
    close = 50 * np.exp(np.cumsum(r))
    open_ = np.r_[50, close[:-1]]
    return pd.DataFrame({"Date": pd.bdate_range("2015-01-02", periods=n), "Open": open_,
                         "High": np.maximum(open_, close) * 1.001,
                         "Low": np.minimum(open_, close) * 0.999, "Close": close,
                         "Volume": 1e6})


def quality(epochs: int, target: str = "log_return") -> dict:
    """Tiny-config overrides whose model quality on ``predictable_prices`` rises with epochs."""
    from stockcast.config import merge

    return merge(TINY, {"train": {"epochs": epochs, "lr": 0.01, "patience": 50},
                        "model": {"hidden_size": 16, "target": target}})


def run_stages(frame: pd.DataFrame, overrides: dict, tracking_uri: str, tmp_path: Path,
               ticker: str = "TEST", after_fit=None):
    """The training flow's stages in order, without Prefect (for registry/tracking tests):
    the same ``stockcast.pipeline`` functions the flow's tasks are (warm start, freshness,
    register only if fresh, promote only if registered; figures are left out).
    ``after_fit(fit)`` may plant a defect in the fitted forecaster before it is evaluated."""
    from stockcast import pipeline
    from stockcast.config import build_config, merge
    from stockcast.data.freshness import check_freshness
    from stockcast.data.schemas import validate_prices
    from stockcast.data.sources import PriceData
    from stockcast.evaluation.scorecard import evaluate_model
    from stockcast.modeling.adaptive import Tracking
    from stockcast.registry.store import MlflowStore
    from stockcast.registry.tracking import log_training_run

    cfg = build_config(merge(merge({"train": {"progress": False}}, overrides),
                             {"data": {"data_dir": str(tmp_path / "data")},
                              "tracking": {"tracking_uri": tracking_uri}}))
    store = MlflowStore.from_config(cfg.tracking)
    prices = PriceData(ticker, frame, "csv", str(tmp_path / "prices.csv"))
    validated = validate_prices(prices, cfg.window, cfg.validation, tmp_path / "reports")
    freshness = check_freshness(validated, cfg.data, scheduled=False)
    start = pipeline.warm_start(ticker, cfg, store)
    fit = pipeline.fit(validated, cfg, start)
    if after_fit is not None:
        after_fit(fit)
    evaluation = evaluate_model(fit, ticker, cfg.promotion.alpha,
                                Tracking.from_config(cfg.intervals),
                                pipeline.walk_forward(cfg, store, ticker))
    serving = pipeline.serve(fit, evaluation, cfg)
    logged = log_training_run(validated, fit, evaluation, serving, cfg, store)
    version = pipeline.register(logged, ticker, cfg, store, freshness)
    decision = pipeline.promote(version, evaluation, fit, ticker, cfg, store, freshness)
    return {"cfg": cfg, "store": store, "validated": validated, "version": version, "decision": decision,
            "evaluation": evaluation, "logged": logged, "data": fit.data, "fit": fit,
            "forecaster": fit.forecaster, "serving": serving}


def error_raised_while_handling(signal_exc: BaseException) -> ValueError:
    """What Prefect's task engine raises when a signal lands before its task run exists:
    another error ("Task run is not set"), raised while handling the signal's exception."""
    try:
        try:
            raise signal_exc
        except BaseException:
            raise ValueError("Task run is not set")  # noqa: B904 (as the engine does)
    except ValueError as exc:
        return exc


def prefect_console_on_the_session_stream() -> None:
    """Prefect configures its logging once per process, on its first flow run or server app,
    and binds its console handler (on the root logger) to the sys.stderr of that moment:
    inside a capsys/capfd test, that test's capture, closed once it ends, after which every
    run's log line in the process failed ("I/O operation on closed file"). When a root handler
    writes to a closed stream, configure Prefect's logging afresh on the current stderr (a
    later call is incremental and keeps the closed stream)."""
    if any(getattr(getattr(h, "stream", None), "closed", False)
           for h in logging.getLogger().handlers):
        from prefect.logging.configuration import setup_logging

        setup_logging(incremental=False)
