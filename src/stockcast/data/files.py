"""Reading price tables: a user's CSV or Parquet file, the bundled sample, and the one
normalised shape every source returns (``Date, Open, High, Low, Close, Volume``, tz-naive
dates, split-adjusted prices). Nothing here drops a row: de-duplication, order and range
checks are the validator's job. The one reordering: a user's file written newest first (as
Nasdaq's and many brokers' exports are: every date before the one above it) is read oldest
first, and the log says so; any other order is left for the validator to refuse."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from stockcast.data.conventions import detect_decimal, parse_dates, to_numbers
from stockcast.errors import DataSourceError

log = logging.getLogger(__name__)

PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]
COLUMNS = ["Date", *PRICE_COLUMNS]
SAMPLE_TICKERS = ("AAPL", "GOOG", "IBM")

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
# Read as the close only when no column above is (Investing.com's export: Date, Price, Open,
# High, Low, Vol., Change %).
_CLOSE_FALLBACK = {"price"}


def _key(name: object) -> str:
    return re.sub(r"[^a-z]", "", str(name).lower())


def _canonical(name: object) -> str | None:
    key = _key(name)
    for canonical, spellings in _ALIASES.items():
        if key in spellings:
            return canonical
    return None


def normalize_prices(raw: pd.DataFrame, decimal: str | None = None,
                     dayfirst: bool | None = None) -> pd.DataFrame:
    """Rename columns to ``Date, Open, High, Low, Close, Volume`` and split-adjust the prices.

    Numbers and dates written as text are read in the file's own convention (detected, or
    ``decimal`` / ``dayfirst`` when given). When an ``Adj Close`` column is present,
    Open/High/Low/Close are rescaled by ``Adj Close / Close`` so splits (and dividends) do
    not look like crashes.
    """
    df = raw.copy()
    if "Date" not in df.columns and isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index(names="Date")
    renames: dict[object, str] = {}
    for col in df.columns:
        canonical = _canonical(col)
        if canonical and canonical not in renames.values():
            renames[col] = canonical
    if "Close" not in renames.values():
        fallback = [c for c in df.columns if _key(c) in _CLOSE_FALLBACK and c not in renames]
        renames |= {fallback[0]: "Close"} if fallback else {}
    df = df.rename(columns=renames)
    df = df[[c for c in ["Date", *PRICE_COLUMNS, "Adj Close"] if c in df.columns]]
    numeric = [c for c in [*PRICE_COLUMNS, "Adj Close"] if c in df.columns]
    text = [c for c in numeric if not pd.api.types.is_numeric_dtype(df[c])]
    if text and decimal is None:
        decimal = detect_decimal(pd.concat([df[c] for c in text], ignore_index=True))
        if decimal is None:
            raise DataSourceError(
                f"numbers like {df[text[0]].dropna().iloc[0]!r} could use ',' or '.' as the "
                "decimal separator and nothing in the file tells which; pass --decimal . or "
                "--decimal ,")
    for col in numeric:
        df[col] = to_numbers(df[col], decimal or ".", suffixes=col == "Volume")
    if "Date" in df.columns:
        df["Date"] = parse_dates(df["Date"], dayfirst)
    if "Adj Close" in df.columns:
        numeric = all(pd.api.types.is_numeric_dtype(df[c]) for c in ["Close", "Adj Close"] if c in df)
        if numeric and "Close" in df.columns:
            _check_adjustable(df)
            factor = df["Adj Close"] / df["Close"]
            for col in ["Open", "High", "Low", "Close"]:
                if col in df.columns:
                    df[col] = df[col] * factor
        df = df.drop(columns="Adj Close")
    return df.reset_index(drop=True)


def read_price_file(path: Path, decimal: str | None = None,
                    dayfirst: bool | None = None) -> pd.DataFrame:
    """Read a user's OHLCV file (CSV in any column order and delimiter, or Parquet), normalised."""
    path = Path(path)
    if not path.is_file():
        what = ("is a directory" if path.is_dir() else "is not a regular file (a FIFO, socket "
                "or device)" if path.exists() else "does not exist")
        raise DataSourceError(f"price file {path} {what}; pass a CSV or Parquet file with --csv")
    if path.stat().st_size == 0:
        raise DataSourceError(f"price file {path} is empty; expected a header row and prices")
    if path.suffix.lower() != ".parquet":
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        return read_price_text(text, f"price file {path}", decimal, dayfirst)
    try:
        raw = pd.read_parquet(path)
    except Exception as exc:
        raise _unreadable(f"price file {path}", exc) from exc
    return _normalized(raw, f"price file {path}", decimal, dayfirst)


def read_price_text(text: str, source: str, decimal: str | None = None,
                    dayfirst: bool | None = None) -> pd.DataFrame:
    """A CSV's text (any column order and delimiter) as the normalised price table, read
    exactly as a file is; ``source`` names it in messages ("price file x.csv")."""
    text = text.lstrip("\ufeff\r\n\t ")
    if not text.strip():
        raise DataSourceError(f"{source} is empty (only blank lines)")
    try:  # text in, numbers parsed in the file's own decimal convention afterwards
        raw = pd.read_csv(io.StringIO(text), sep=None, engine="python", dtype=str)
    except Exception as exc:
        raise _unreadable(source, exc) from exc
    return _normalized(raw, source, decimal, dayfirst)


def _unreadable(source: str, exc: Exception) -> DataSourceError:
    return DataSourceError(
        f"could not read {source} as a price table ({type(exc).__name__}: {exc}). "
        "Expected a CSV with a header row: Date, Open, High, Low, Close, Volume.")


def _normalized(raw: pd.DataFrame, source: str, decimal: str | None,
                dayfirst: bool | None) -> pd.DataFrame:
    if raw.empty:
        raise DataSourceError(f"{source} holds no rows")
    frame = normalize_prices(raw, decimal, dayfirst)
    if "Date" not in frame.columns:
        raise DataSourceError(
            f"could not read {source} as a price table: no date column among "
            f"{[str(c)[:30] for c in raw.columns[:8]]}. Expected a header row: Date, Open, High, "
            "Low, Close, Volume.")
    _one_daily_series(raw, frame, source)
    return _oldest_first(frame, source)


def _one_daily_series(raw: pd.DataFrame, frame: pd.DataFrame, source: str) -> None:
    """Refuse, saying what the file holds, a file of several tickers (a symbol column with
    more than one value) or of intraday bars (several rows for most dates): the validator
    would only list thousands of duplicate dates."""
    for col in [c for c in raw.columns if _key(c) in {"ticker", "symbol"}]:
        names = sorted(raw[col].dropna().astype(str).str.strip().unique())
        if len(names) > 1:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise DataSourceError(
                f"{source} holds {len(names)} tickers in its {str(col)!r} column ({shown}); "
                "stockcast reads one ticker's prices per file: write each ticker's rows to its "
                "own file")
    per_day = frame["Date"].value_counts()
    if (per_day > 1).sum() >= max(2, len(per_day) // 2):
        raise DataSourceError(
            f"{source} holds several rows for most of its dates (up to {per_day.max()} a day): "
            "intraday bars, or several series in one file? stockcast reads one ticker's daily "
            "bars per file; resample intraday bars to one row a day (Open first, High max, "
            "Low min, Close last, Volume summed)")


def _oldest_first(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """``frame`` oldest first when its file lists every date before the one above it (a
    newest-first export); any other order is returned as it is, for the validator."""
    dates = frame["Date"]
    if len(frame) < 2 or dates.isna().any() or not (dates.diff().iloc[1:] < pd.Timedelta(0)).all():
        return frame
    log.info("%s lists its dates newest first (%s .. %s): read oldest first", source,
             dates.iloc[0].date(), dates.iloc[-1].date())
    return frame.iloc[::-1].reset_index(drop=True)


def sample_path(ticker: str) -> Path:
    """The bundled sample CSV for ``ticker``."""
    if ticker not in SAMPLE_TICKERS:
        raise DataSourceError(
            f"no bundled sample for {ticker!r}; samples exist for {', '.join(SAMPLE_TICKERS)}. "
            "Use --source yfinance (online) or --source csv --csv PATH."
        )
    return Path(str(resources.files("stockcast") / "sample_data" / f"{ticker}.csv"))


def in_date_range(frame: pd.DataFrame, start: dt.date | None, end: dt.date | None) -> pd.DataFrame:
    """Rows with ``start <= Date < end`` (either bound optional)."""
    mask = pd.Series(True, index=frame.index)
    if start is not None:
        mask &= frame["Date"] >= pd.Timestamp(start)
    if end is not None:
        mask &= frame["Date"] < pd.Timestamp(end)
    return frame[mask].reset_index(drop=True)


def _check_adjustable(df: pd.DataFrame) -> None:
    """DataSourceError naming the column, the rows and the values when Close or Adj Close is
    not a positive price where one is given: adjusting by their ratio would move the fault
    into Open, High and Low, at values that are not in the file."""
    for col in ("Close", "Adj Close"):
        values = df[col]
        bad = values.notna() & ~(np.isfinite(values) & (values > 0))
        if bad.any():
            rows = np.flatnonzero(bad.to_numpy())
            where = ", ".join(
                f"row {r}" + (f" ({pd.Timestamp(df['Date'].iloc[r]).date()})"
                              if "Date" in df and pd.notna(df["Date"].iloc[r]) else "")
                + f": {values.iloc[r]}" for r in rows[:3])
            raise DataSourceError(
                f"column {col} has {len(rows)} value(s) that are not positive prices ({where}"
                f"{', ...' if len(rows) > 3 else ''}); the prices are adjusted by Adj Close / "
                "Close, so fix or remove those rows (or drop the Adj Close column)")
