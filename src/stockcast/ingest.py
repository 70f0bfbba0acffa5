"""Getting daily OHLCV prices: yfinance, the local cache, a user's CSV, or the bundled sample.

This is the only module that imports yfinance. Every loader returns the same normalised
frame: columns ``Date, Open, High, Low, Close, Volume``, timezone-naive dates, prices
split-adjusted. Sorting, de-duplication and range checks are the validator's job: nothing
here drops a row silently.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd
import yfinance as yf

from stockcast.config import DataConfig
from stockcast.errors import CacheCorruptError, DataSourceError

log = logging.getLogger(__name__)

PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]
COLUMNS = ["Date", *PRICE_COLUMNS]
SAMPLE_TICKERS = ("AAPL", "GOOG", "IBM")
# Days re-fetched before the last cached date: yfinance revises the latest bars, and a
# mismatch on the overlap means the adjustment basis moved (a new split or dividend).
OVERLAP_DAYS = 7

# The usual spellings of each column, compared after lower-casing and removing non-letters.
_ALIASES = {
    "Date": {"date", "datetime", "timestamp", "time", "day", "tradingday"},
    "Open": {"open", "openprice", "o"},
    "High": {"high", "highprice", "h"},
    "Low": {"low", "lowprice", "l"},
    "Close": {"close", "closeprice", "closelast", "last", "c"},
    "Adj Close": {"adjclose", "adjustedclose", "adjcloseprice", "adjustedcloseprice"},
    "Volume": {"volume", "vol", "v"},
}


@dataclass(frozen=True)
class PriceData:
    """Prices for one ticker and where they came from."""

    ticker: str
    frame: pd.DataFrame
    source: str  # the source actually used: yfinance | cache | csv | sample
    location: str  # file path or URL the prices were read from
    snapshot_path: Path | None = None  # immutable copy of exactly what this run used
    notes: tuple[str, ...] = field(default_factory=tuple)  # fallbacks taken, and why
    # A fresh download not yet in the cache: written only once it passed validation.
    cache_pending: bool = False

    @property
    def digest(self) -> str:
        """A short content hash of the frame, for lineage."""
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------- normalising


def _canonical(name: object) -> str | None:
    key = re.sub(r"[^a-z]", "", str(name).lower())
    for canonical, spellings in _ALIASES.items():
        if key in spellings:
            return canonical
    return None


def _to_number(col: pd.Series) -> pd.Series:
    """Strip currency symbols and thousands separators; leave anything else for the validator."""
    if pd.api.types.is_numeric_dtype(col):
        return col
    cleaned = col.astype("string").str.replace(r"[$,\s]", "", regex=True)
    numeric = pd.to_numeric(cleaned, errors="coerce")
    # Keep the original text where it is not a number, so validation can show the bad value.
    if numeric.isna().sum() > col.isna().sum():
        return col
    return numeric


def normalize_prices(raw: pd.DataFrame) -> pd.DataFrame:
    """Rename columns to ``Date, Open, High, Low, Close, Volume`` and split-adjust the prices.

    When an ``Adj Close`` column is present, Open/High/Low/Close are rescaled by
    ``Adj Close / Close`` so splits (and dividends) do not look like crashes.
    """
    df = raw.copy()
    if "Date" not in df.columns and isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index(names="Date")
    renames: dict[object, str] = {}
    for col in df.columns:
        canonical = _canonical(col)
        if canonical and canonical not in renames.values():
            renames[col] = canonical
    df = df.rename(columns=renames)
    df = df[[c for c in ["Date", *PRICE_COLUMNS, "Adj Close"] if c in df.columns]]

    for col in [*PRICE_COLUMNS, "Adj Close"]:
        if col in df.columns:
            df[col] = _to_number(df[col])

    if "Date" in df.columns:
        dates = df["Date"]
        if not pd.api.types.is_datetime64_any_dtype(dates):
            dates = pd.to_datetime(dates.astype("string"), format="mixed", errors="coerce")
        if getattr(dates.dt, "tz", None) is not None:
            # Daily bars are stamped at midnight exchange time: keep that calendar date.
            dates = dates.dt.tz_localize(None)
        df["Date"] = dates.dt.normalize().astype("datetime64[ns]")

    if "Adj Close" in df.columns:
        if all(pd.api.types.is_numeric_dtype(df[c]) for c in ["Close", "Adj Close"] if c in df):
            if "Close" in df.columns:
                factor = df["Adj Close"] / df["Close"]
                for col in ["Open", "High", "Low", "Close"]:
                    if col in df.columns:
                        df[col] = df[col] * factor
        df = df.drop(columns="Adj Close")
    return df.reset_index(drop=True)


# ---------------------------------------------------------------------------- yfinance


_NETWORK_HINTS = ("resolve host", "timed out", "timeout", "connection", "failed to perform",
                  "curl: (", "network is unreachable", "ssl")


class _YFinanceLog(logging.Handler):
    """Collects yfinance's own log lines: offline it reports a DNS failure there and then
    raises 'possibly delisted', which must not be mistaken for an unknown ticker."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _classify(ticker: str, exc: Exception, yf_log: list[str] | None = None) -> DataSourceError:
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    network_noise = [m for m in yf_log or [] if any(h in m.lower() for h in _NETWORK_HINTS)]
    if network_noise and not isinstance(exc, yf.exceptions.YFRateLimitError):
        return DataSourceError(
            f"could not reach Yahoo Finance for {ticker} ({network_noise[-1][:200]}). Check "
            "the network, or run offline with --source cache or --source sample.",
            transient=True,
        )
    if isinstance(exc, yf.exceptions.YFRateLimitError) or "too many requests" in lowered:
        return DataSourceError(
            f"Yahoo Finance rate-limited the request for {ticker} ({text}). "
            "Wait a few minutes and run again, or use --source cache.",
            transient=True,
        )
    if isinstance(exc, yf.exceptions.YFTickerMissingError | yf.exceptions.YFPricesMissingError):
        return DataSourceError(
            f"Yahoo Finance has no prices for {ticker!r} ({text}). Check the symbol "
            "(it may be misspelt or delisted) or choose another date range.",
            transient=False,
        )
    if isinstance(exc, OSError | TimeoutError | ConnectionError) or any(
        s in lowered for s in ("resolve host", "timed out", "connection", "failed to perform")
    ):
        return DataSourceError(
            f"could not reach Yahoo Finance for {ticker} ({text}). Check the network, "
            "or run offline with --source cache or --source sample.",
            transient=True,
        )
    return DataSourceError(f"Yahoo Finance failed for {ticker}: {text}", transient=False)


def fetch_prices(
    ticker: str, start: dt.date | None, end: dt.date | None, *, timeout: float = 10.0
) -> pd.DataFrame:
    """Download daily adjusted OHLCV for one ticker from Yahoo Finance, normalised.

    ``end`` is exclusive, as in yfinance. Raises DataSourceError naming the ticker and the
    cause; ``.transient`` tells whether a retry may help.
    """
    yf_logger = logging.getLogger("yfinance")
    captured = _YFinanceLog()
    yf_logger.addHandler(captured)
    try:
        # Explicit on purpose: auto_adjust defaults changed across yfinance versions.
        # Ticker.history always returns single-level columns, and raise_errors stops it from
        # printing a failure and returning an empty frame.
        raw = yf.Ticker(ticker).history(
            start=start,
            end=end,
            period=None if start else "max",
            interval="1d",
            auto_adjust=True,
            actions=False,
            timeout=timeout,
            raise_errors=True,
        )
    except Exception as exc:  # yfinance raises many types, curl's included
        raise _classify(ticker, exc, captured.messages) from exc
    finally:
        yf_logger.removeHandler(captured)
    if raw is None or raw.empty:
        raise DataSourceError(
            f"Yahoo Finance returned no rows for {ticker!r} between {start} and {end}. "
            "Check the symbol (unknown or delisted?) and the date range.",
            transient=False,
        )
    frame = normalize_prices(raw)
    # Yahoo sometimes repeats the latest bar (a live and a settled copy of the same day).
    repeated = frame["Date"].duplicated(keep="last")
    if repeated.any():
        log.warning("%s: Yahoo Finance returned %d repeated bar(s) for %s; kept the latest copy",
                    ticker, int(repeated.sum()),
                    ", ".join(str(d.date()) for d in frame.loc[repeated, "Date"]))
        frame = frame[~repeated].reset_index(drop=True)
    return frame


def fetch_with_retries(
    ticker: str,
    start: dt.date | None,
    end: dt.date | None,
    *,
    retries: int,
    backoff_seconds: float,
    timeout: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """``fetch_prices`` with exponential backoff on transient errors; permanent ones raise at once."""
    attempt = 0
    while True:
        try:
            return fetch_prices(ticker, start, end, timeout=timeout)
        except DataSourceError as exc:
            if not exc.transient or attempt >= retries:
                raise
            delay = backoff_seconds * (2**attempt)
            attempt += 1
            log.warning("%s (attempt %d of %d; retrying in %.1fs)", exc, attempt, retries + 1, delay)
            sleep(delay)


# ---------------------------------------------------------------------------- files


def cache_path(data_dir: Path, ticker: str) -> Path:
    """The merged per-ticker cache file."""
    return Path(data_dir) / "cache" / f"{ticker}.parquet"


def read_cache(data_dir: Path, ticker: str) -> pd.DataFrame | None:
    """The cached prices for ``ticker``, None when there is no cache; CacheCorruptError if unreadable."""
    path = cache_path(data_dir, ticker)
    if not path.exists():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise CacheCorruptError(
            f"the cache file {path} for {ticker} is corrupt ({type(exc).__name__}: {exc}). "
            "It was not used. Delete it and fetch again with --source yfinance."
        ) from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing or frame.empty:
        raise CacheCorruptError(
            f"the cache file {path} for {ticker} is incomplete (missing {missing or 'rows'}). "
            "Delete it and fetch again with --source yfinance."
        )
    return frame[COLUMNS]


def _atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write via a temporary file and rename, so a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def write_cache(data_dir: Path, ticker: str, frame: pd.DataFrame) -> Path:
    """Replace the ticker's cache atomically."""
    path = cache_path(data_dir, ticker)
    _atomic_write_parquet(frame[COLUMNS], path)
    return path


def write_snapshot(data_dir: Path, ticker: str, frame: pd.DataFrame, source: str) -> Path:
    """Keep an immutable copy of exactly the prices a run used (never overwritten)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = Path(data_dir) / "raw" / ticker / f"{stamp}-{source}.parquet"
    # Written before validation, so keep whatever the source gave, bad values included.
    kept = frame[[c for c in COLUMNS if c in frame.columns]].copy()
    for col in kept.columns:
        if kept[col].dtype == object:
            kept[col] = kept[col].astype("string")
    _atomic_write_parquet(kept, path)
    os.chmod(path, 0o444)
    return path


def read_price_file(path: Path) -> pd.DataFrame:
    """Read a user's OHLCV file (CSV in any column order, or Parquet), normalised."""
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"price file {path} does not exist; pass an existing CSV with --csv")
    try:
        if path.suffix.lower() == ".parquet":
            raw = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path, sep=None, engine="python")
    except Exception as exc:
        raise DataSourceError(
            f"could not read {path} as a price table ({type(exc).__name__}: {exc}). "
            "Expected a CSV with a header row: Date, Open, High, Low, Close, Volume."
        ) from exc
    if raw.empty:
        raise DataSourceError(f"price file {path} holds no rows")
    return normalize_prices(raw)


def sample_path(ticker: str) -> Path:
    """The bundled sample CSV for ``ticker``."""
    if ticker not in SAMPLE_TICKERS:
        raise DataSourceError(
            f"no bundled sample for {ticker!r}; samples exist for {', '.join(SAMPLE_TICKERS)}. "
            "Use --source yfinance (online) or --source csv --csv PATH."
        )
    return Path(str(resources.files("stockcast") / "sample_data" / f"{ticker}.csv"))


def _in_range(frame: pd.DataFrame, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    if start is not None:
        mask &= frame["Date"] >= pd.Timestamp(start)
    if end is not None:
        mask &= frame["Date"] < pd.Timestamp(end)
    return frame[mask].reset_index(drop=True)


# ---------------------------------------------------------------------------- sources


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
    fetch = lambda s: fetch_with_retries(  # noqa: E731
        ticker, s, cfg.end, retries=cfg.retries, backoff_seconds=cfg.retry_backoff_seconds,
        timeout=cfg.request_timeout_seconds,
    )
    # The cache is reusable when it reaches back to the requested start (the first trading day
    # may fall a few days after a weekend or holiday start date).
    covers = cached is not None and (
        cached["Date"].iloc[0] <= pd.Timestamp(start) + pd.Timedelta(days=OVERLAP_DAYS))
    if covers:
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
    else:
        merged = fetch(start)
    return _in_range(merged.reset_index(drop=True), start, cfg.end)


def commit_to_cache(prices: PriceData, validated: pd.DataFrame, data_dir: Path) -> Path | None:
    """Store a validated fresh download as the ticker's cache (atomically)."""
    if not prices.cache_pending:
        return None
    return write_cache(data_dir, prices.ticker, validated)


def load_prices(ticker: str, cfg: DataConfig, today: dt.date | None = None,
                snapshot: bool = True) -> PriceData:
    """Prices for one ticker from ``cfg.source``; ``auto`` tries yfinance, then the cache, then
    the bundled sample, and says loudly which one it used and why. Pipeline runs keep a
    ``snapshot`` of what they used; a look at the data (validate, report) need not."""
    ticker = ticker.strip().upper()
    today = today or dt.date.today()
    notes: list[str] = []

    def result(frame: pd.DataFrame, source: str, location: str) -> PriceData:
        kept = write_snapshot(cfg.data_dir, ticker, frame, source) if snapshot else None
        # Loud when a fallback happened: the user asked for something else.
        level = logging.WARNING if notes else logging.INFO
        log.log(level, "%s: using prices from source=%s (%s), %d rows",
                ticker, source, location, len(frame))
        return PriceData(ticker, frame, source, location, kept, tuple(notes),
                         cache_pending=source == "yfinance")

    def from_sample() -> PriceData:
        path = sample_path(ticker)
        return result(_in_range(read_price_file(path), cfg.start, cfg.end), "sample", str(path))

    def from_cache(frame: pd.DataFrame) -> PriceData:
        return result(_in_range(frame, cfg.start, cfg.end), "cache",
                      str(cache_path(cfg.data_dir, ticker)))

    def from_yfinance() -> PriceData:
        frame = update_from_yfinance(ticker, cfg, today)
        return result(frame, "yfinance", f"https://finance.yahoo.com/quote/{ticker}")

    if cfg.source == "csv":
        assert cfg.csv_path is not None  # guaranteed by DataConfig
        frame = _in_range(read_price_file(cfg.csv_path), cfg.start, cfg.end)
        return result(frame, "csv", str(cfg.csv_path))
    if cfg.source == "sample":
        return from_sample()
    if cfg.source == "cache":
        frame = read_cache(cfg.data_dir, ticker)
        if frame is None:
            raise DataSourceError(
                f"no cached prices for {ticker} at {cache_path(cfg.data_dir, ticker)}. "
                "Run once online with --source yfinance to fill the cache."
            )
        return from_cache(frame)
    if cfg.source == "yfinance":
        return from_yfinance()

    # auto: yfinance, then the cache, then the sample. Only transient failures fall back: an
    # unknown ticker is an error, not a reason to train on stale data.
    try:
        return from_yfinance()
    except DataSourceError as exc:
        if not exc.transient:
            raise
        notes.append(f"yfinance failed: {exc}")
        log.warning("%s: FALLING BACK: %s", ticker, exc)
    try:
        cached = read_cache(cfg.data_dir, ticker)
    except CacheCorruptError as exc:
        raise DataSourceError(
            f"{ticker}: Yahoo Finance is unreachable and {exc}", transient=True
        ) from exc
    if cached is not None:
        notes.append("fell back to the local cache; its last date is "
                     f"{cached['Date'].iloc[-1].date()}")
        return from_cache(cached)
    if ticker in SAMPLE_TICKERS:
        notes.append("no cache either: fell back to the bundled sample data (ends 2013-03-01)")
        return from_sample()
    raise DataSourceError(
        f"{ticker}: Yahoo Finance is unreachable, there is no local cache and no bundled sample "
        "for this ticker. Run again when online, or pass --source csv --csv PATH.",
        transient=True,
    )
