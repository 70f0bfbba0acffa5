"""Reading numbers and dates the way the file wrote them: the decimal separator (806.19 or
806,19 or 1.234,56) and the date order (03/04/2013: March or April?) are detected from the
whole column, and an ambiguous file is refused with the option that settles it; nothing is
guessed silently."""

from __future__ import annotations

import re

import pandas as pd

from stockcast.errors import DataSourceError

_DMY = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{2,4})\b")
# A time-zone offset after a time (what yfinance's to_csv writes: 2013-03-01 00:00:00-05:00).
_OFFSET = re.compile(r"(?<=\d{2}:\d{2})(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)$")
# Dates pandas can hold at nanosecond resolution.
_FIRST_YEAR, _LAST_YEAR = 1678, 2261
_SUFFIX = {"K": 1e3, "M": 1e6, "B": 1e9}


def detect_decimal(values: pd.Series) -> str | None:
    """'.' or ',' as the decimal separator of number-like text, None when the text cannot tell
    (only values like 1,234 with exactly three digits after a single kind of separator)."""
    text = values.dropna().astype("string").str.replace(r"[$€£\s']", "", regex=True)
    text = text[text.str.contains(r"\d", regex=True)]
    both = text[text.str.contains(",", regex=False) & text.str.contains(".", regex=False)]
    if len(both):
        last_comma = both.str.rfind(",") > both.str.rfind(".")
        if last_comma.all():
            return ","
        if not last_comma.any():
            return "."
        raise DataSourceError("the file mixes 1.234,56 and 1,234.56 number styles; fix the file")
    if text.str.contains(r",(?:\d{1,2}|\d{4,})$", regex=True).any():
        return ","
    if text.str.contains(r"\.(?:\d{1,2}|\d{4,})$", regex=True).any():
        return "."
    if text.str.contains(r"[.,]\d{3}$", regex=True).any():
        return None
    return "."


def to_numbers(col: pd.Series, decimal: str, suffixes: bool = False) -> pd.Series:
    """Number-like text to floats with the given decimal separator (and, with ``suffixes``,
    the K / M / B of volumes written as 1.23M); values that are not numbers stay as text so
    the validator can show them."""
    if pd.api.types.is_numeric_dtype(col):
        return col
    thousands = "." if decimal == "," else ","
    cleaned = (col.astype("string").str.replace(r"[$€£\s']", "", regex=True)
               .str.replace(thousands, "", regex=False).str.replace(decimal, ".", regex=False))
    if suffixes and cleaned.str.contains(r"\d[KMBkmb]$", regex=True).any():
        scale = cleaned.str.extract(r"\d([KMBkmb])$", expand=False).str.upper().map(_SUFFIX)
        cleaned = cleaned.str.replace(r"(?<=\d)[KMBkmb]$", "", regex=True)
        numeric = pd.to_numeric(cleaned, errors="coerce") * scale.fillna(1.0)
    else:
        numeric = pd.to_numeric(cleaned, errors="coerce")
    if numeric.isna().sum() > col.isna().sum():
        return col
    return numeric


def detect_dayfirst(dates: pd.Series) -> bool | None:
    """True for day-first (31.01.2013), False for month-first (01/31/2013), None when every
    date could be either; also None for year-first dates (2013-01-31), which are unambiguous."""
    parts = dates.dropna().astype("string").str.extract(_DMY)
    parts = parts.dropna()
    if parts.empty:
        return None
    first, second = parts[0].astype(int), parts[1].astype(int)
    if (first > 12).any() and (second > 12).any():
        raise DataSourceError("the Date column mixes day-first and month-first dates; fix the file")
    if (first > 12).any():
        return True
    if (second > 12).any():
        return False
    # Every day is <= 12: daily bars settle it when one reading gives gaps of days and the
    # other gaps of about a month (01/02, 01/03 are consecutive days, not 1 Feb and 1 Mar).
    years = parts[2].astype(int)
    gaps = {}
    for dayfirst, (day, month) in ((True, (first, second)), (False, (second, first))):
        stamps = pd.to_datetime(pd.DataFrame({"year": years, "month": month, "day": day}),
                                errors="coerce")
        gaps[dayfirst] = stamps.diff().dt.days.abs().median()
    if len(parts) > 1 and gaps[False] <= 5 < 20 <= gaps[True]:
        return False
    if len(parts) > 1 and gaps[True] <= 5 < 20 <= gaps[False]:
        return True
    return None


def parse_dates(dates: pd.Series, dayfirst: bool | None) -> pd.Series:
    """Calendar dates (tz-naive, midnight) from text or datetimes. Time-zone offsets are
    dropped, keeping the exchange's own calendar date (offsets that change with daylight
    saving time are fine). Dates pandas cannot hold become NaT for the validator to report."""
    if not pd.api.types.is_datetime64_any_dtype(dates):
        text = dates.astype("string").str.strip().str.replace(_OFFSET, "", regex=True)
        if dayfirst is None and text.str.match(_DMY).any():
            dayfirst = detect_dayfirst(text)
            if dayfirst is None:
                raise DataSourceError(
                    f"the dates (e.g. {text.iloc[0]!r}) could be day-first or month-first and no date in the "
                    "file tells which; pass --dayfirst or --monthfirst")
        dates = pd.to_datetime(text, format="mixed", dayfirst=bool(dayfirst), errors="coerce")
    elif getattr(dates.dt, "tz", None) is not None:
        # Daily bars are stamped at midnight exchange time: keep that calendar date.
        dates = dates.dt.tz_localize(None)
    years = dates.dt.year
    dates = dates.where((years >= _FIRST_YEAR) & (years <= _LAST_YEAR))
    return dates.dt.normalize().astype("datetime64[ns]")
