"""Prices for one ticker from the configured source: Yahoo Finance (merged with the cache), the
cache, a user's file or the bundled sample; ``auto`` falls back loudly, never silently."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stockcast.config import DataConfig
from stockcast.data.cache import cache_path, read_cache, write_snapshot
from stockcast.data.files import SAMPLE_TICKERS, in_date_range, read_price_file, sample_path
from stockcast.data.yahoo import fetch_with_retries
from stockcast.errors import CacheCorruptError, ConfigError, DataSourceError
from stockcast.tickers import clean_ticker

log = logging.getLogger(__name__)

# Days re-fetched before the last cached date: yfinance revises the latest bars, and a
# mismatch on the overlap means the adjustment basis moved (a new split or dividend).
OVERLAP_DAYS = 7


@dataclass(frozen=True)
class PriceData:
    """Prices for one ticker and where they came from (not yet validated)."""

    ticker: str
    frame: pd.DataFrame
    source: str  # the source actually used: yfinance | cache | csv | sample
    location: str  # file path or URL the prices were read from
    snapshot_path: Path | None = None  # immutable copy of exactly what this run used
    notes: tuple[str, ...] = field(default_factory=tuple)  # fallbacks taken, and why
    # The source fallen back to when the one asked for failed ("cache" or "sample"), else None.
    fallback: str | None = None
    # A fresh download not yet in the cache: committed only once it passed validation.
    cache_pending: bool = False

    @property
    def digest(self) -> str:
        """A short content hash of the frame, for lineage."""
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def update_from_yfinance(ticker: str, cfg: DataConfig, today: dt.date) -> pd.DataFrame:
    """Fetch only the days after the cache's last date (full history when needed) and merge.

    The cache itself is not written here: ``commit_to_cache`` does that once the merged
    frame has passed validation, so a bad download never replaces good data."""
    start = cfg.start or (today - dt.timedelta(days=round(365.25 * cfg.history_years)))
    try:
        cached = read_cache(cfg.data_dir, ticker)
    except CacheCorruptError as exc:
        log.warning("%s Fetching the full history instead.", exc)
        cached = None

    def fetch(since: dt.date) -> pd.DataFrame:
        return fetch_with_retries(ticker, since, cfg.end, retries=cfg.retries,
                                  backoff_seconds=cfg.retry_backoff_seconds,
                                  timeout=cfg.request_timeout_seconds)

    # The cache is reusable when it reaches back to the requested start (the first trading day
    # may fall a few days after a weekend or holiday start date).
    covers = cached is not None and (
        cached["Date"].iloc[0] <= pd.Timestamp(start) + pd.Timedelta(days=OVERLAP_DAYS))
    if not covers:
        return in_date_range(fetch(start), start, cfg.end)
    last = cached["Date"].iloc[-1]
    fresh = fetch((last - pd.Timedelta(days=OVERLAP_DAYS)).date())
    overlap = fresh.merge(cached, on="Date", suffixes=("", "_old"))
    drift = (overlap["Close"] / overlap["Close_old"] - 1).abs().max() if len(overlap) else 0
    if len(overlap) and drift < 1e-6:
        merged = pd.concat([cached[cached["Date"] < fresh["Date"].iloc[0]], fresh])
        log.info("%s: %d new rows after %s merged into the cache",
                 ticker, int((fresh["Date"] > last).sum()), last.date())
    else:
        log.info("%s: adjusted prices changed since the cache was written (split or "
                 "dividend); re-fetching the full history", ticker)
        merged = fetch(start)
    return in_date_range(merged.reset_index(drop=True), start, cfg.end)


def _sample(ticker: str, cfg: DataConfig) -> tuple[pd.DataFrame, str, str]:
    path = sample_path(ticker)
    return in_date_range(read_price_file(path), cfg.start, cfg.end), "sample", str(path)


def _cache(ticker: str, cfg: DataConfig, frame: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    return (in_date_range(frame, cfg.start, cfg.end), "cache",
            str(cache_path(cfg.data_dir, ticker)))


def _fallback(ticker: str, cfg: DataConfig, notes: list[str]) -> tuple[pd.DataFrame, str, str]:
    """After a transient Yahoo failure: the cache, then the bundled sample."""
    try:
        cached = read_cache(cfg.data_dir, ticker)
    except CacheCorruptError as exc:
        raise DataSourceError(f"{ticker}: Yahoo Finance is unreachable and {exc}",
                              transient=True) from exc
    if cached is not None:
        notes.append(f"fell back to the local cache; its last date is {cached['Date'].iloc[-1].date()}")
        return _cache(ticker, cfg, cached)
    if ticker in SAMPLE_TICKERS:
        notes.append("no cache either: fell back to the bundled sample data (ends 2013-03-01)")
        return _sample(ticker, cfg)
    raise DataSourceError(
        f"{ticker}: Yahoo Finance is unreachable, there is no local cache and no bundled sample "
        "for this ticker. Run again when online, or pass --source csv --csv PATH.",
        transient=True,
    )


Prefetched = pd.DataFrame | Exception  # a ticker's merged download, or why it failed


def prefetch_yahoo(tickers: tuple[str, ...], cfg: DataConfig, today: dt.date | None = None,
                   max_threads: int = 8) -> dict[str, Prefetched]:
    """Every ticker's Yahoo download (merged with its cache, as ``update_from_yfinance``) at
    once, in ``max_threads`` threads: the requests are I/O, so a watchlist's downloads overlap
    instead of queueing behind the training workers. Each ticker keeps its own result or its
    own error (with its own retries), so one bad symbol fails only itself. (yfinance's
    ``download`` is the same threaded loop over ``Ticker.history``, but it keeps per-ticker
    errors only as log lines.)"""
    from concurrent.futures import ThreadPoolExecutor

    today = today or dt.date.today()

    def one(ticker: str) -> Prefetched:
        try:
            return update_from_yfinance(ticker, cfg, today)
        except Exception as exc:  # kept for this ticker's own ingest to raise
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(max_threads, len(tickers)))) as pool:
        return dict(zip(tickers, pool.map(one, tickers), strict=True))


def _yahoo(ticker: str, cfg: DataConfig, today: dt.date,
           prefetched: Prefetched | None) -> pd.DataFrame:
    if prefetched is None:
        return update_from_yfinance(ticker, cfg, today)
    if isinstance(prefetched, Exception):
        raise prefetched
    return prefetched


def _read(ticker: str, cfg: DataConfig, today: dt.date, notes: list[str],
          prefetched: Prefetched | None = None) -> tuple[pd.DataFrame, str, str]:
    if cfg.source == "csv":
        assert cfg.csv_path is not None  # guaranteed by DataConfig
        frame = read_price_file(cfg.csv_path, cfg.decimal, cfg.dayfirst)
        return in_date_range(frame, cfg.start, cfg.end), "csv", str(cfg.csv_path)
    if cfg.source == "sample":
        return _sample(ticker, cfg)
    if cfg.source == "cache":
        frame = read_cache(cfg.data_dir, ticker)
        if frame is None:
            raise DataSourceError(
                f"no cached prices for {ticker} at {cache_path(cfg.data_dir, ticker)}. "
                "Run once online with --source yfinance to fill the cache.")
        return _cache(ticker, cfg, frame)
    yahoo = f"https://finance.yahoo.com/quote/{ticker}"
    if cfg.source == "yfinance":
        return _yahoo(ticker, cfg, today, prefetched), "yfinance", yahoo
    # auto: yfinance, then the cache, then the sample. Only transient failures fall back: an
    # unknown ticker is an error, not a reason to train on stale data.
    try:
        return _yahoo(ticker, cfg, today, prefetched), "yfinance", yahoo
    except DataSourceError as exc:
        if not exc.transient:
            raise
        notes.append(f"yfinance failed: {exc}")
    return _fallback(ticker, cfg, notes)


def load_prices(ticker: str, cfg: DataConfig, today: dt.date | None = None,
                snapshot: bool = True, prefetched: Prefetched | None = None) -> PriceData:
    """Prices for one ticker from ``cfg.source``; ``auto`` tries yfinance, then the cache, then
    the bundled sample, and says loudly which one it used and why. Pipeline runs keep a
    ``snapshot`` of what they used; a look at the data (validate, report) need not.
    ``prefetched``: this ticker's result of ``prefetch_yahoo`` (its download, or its error),
    used in place of a download of its own."""
    try:
        ticker = clean_ticker(ticker)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    notes: list[str] = []
    frame, source, location = _read(ticker, cfg, today or dt.date.today(), notes, prefetched)
    kept = write_snapshot(cfg.data_dir, ticker, frame, source) if snapshot else None
    if notes:  # loud, in one line: the user asked for something else
        log.warning("%s: FALLING BACK to prices from source=%s (%s, %d rows, last date %s): %s",
                    ticker, source, location, len(frame),
                    frame["Date"].iloc[-1].date() if len(frame) else "-", " | ".join(notes))
    else:
        log.info("%s: using prices from source=%s (%s), %d rows", ticker, source, location,
                 len(frame))
    return PriceData(ticker, frame, source, location, kept, tuple(notes),
                     # only ``auto`` falls back (to the cache, then the sample)
                     fallback=source if cfg.source == "auto" and source != "yfinance" else None,
                     cache_pending=source == "yfinance")
