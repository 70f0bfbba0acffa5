"""What a ticker symbol may look like. Every file name and registered model name is built from
a cleaned ticker, so none can reach outside its folder or collide with another's."""

from __future__ import annotations

import re

# What real symbols look like: letters, digits and . - ^ = (BRK-B, ^GSPC, EURUSD=X, 005930.KS).
TICKER_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.\-^=]{0,19}|\^[A-Z0-9][A-Z0-9.\-^=]{0,18}")


def clean_ticker(ticker: str) -> str:
    """The ticker upper-cased and stripped; ValueError unless it looks like a real symbol
    (letters, digits, . - ^ =; at most 20 characters). Every file name and registered model
    name is built from a cleaned ticker, so none can reach outside its folder."""
    cleaned = str(ticker).strip().upper()
    if not TICKER_PATTERN.fullmatch(cleaned):
        shown = cleaned if len(cleaned) <= 40 else cleaned[:40] + "..."
        raise ValueError(
            f"{shown!r} is not a ticker symbol: use letters, digits and . - ^ = only, at most "
            "20 characters (e.g. GOOG, BRK-B, ^GSPC, EURUSD=X)")
    return cleaned
