"""Prices ready to use: ingest one ticker from its configured source and validate it, the way
the pipeline does (the commands that only look at data use this, not their own wiring)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from stockcast.config import DataConfig, ValidationConfig, WindowConfig
from stockcast.data.schemas import ValidatedPrices, ValidationReport, check_prices, validate_prices
from stockcast.data.sources import PriceData, load_prices


def load_validated(ticker: str, data: DataConfig, window: WindowConfig,
                   validation: ValidationConfig, report_dir: Path | None = None,
                   snapshot: bool = False, today: dt.date | None = None) -> ValidatedPrices:
    """Load ``ticker`` from ``data.source`` and validate it; DataValidationError (with the
    report) when the prices are unusable. A look at the data keeps no snapshot by default."""
    prices = load_prices(ticker, data, today=today, snapshot=snapshot)
    return validate_prices(prices, window, validation, report_dir)


def load_checked(ticker: str, data: DataConfig, window: WindowConfig,
                 validation: ValidationConfig) -> tuple[PriceData, ValidationReport]:
    """Load ``ticker`` and judge it without raising: the prices and the full report, valid or
    not (what ``stockcast validate`` prints)."""
    prices = load_prices(ticker, data, snapshot=False)
    return prices, check_prices(prices.frame, ticker, window, validation)


def bundled_samples(window: WindowConfig, validation: ValidationConfig,
                    skip: tuple[str, ...] = ()) -> dict[str, ValidatedPrices]:
    """The bundled sample series (real daily prices), validated for this window, except
    ``skip``: extra training series for a global model. A sample this config cannot use
    (e.g. a window longer than its history) is left out, not an error."""
    from stockcast.data.files import SAMPLE_TICKERS, read_price_file, sample_path
    from stockcast.errors import DataValidationError

    out = {}
    for ticker in SAMPLE_TICKERS:
        if ticker in skip:
            continue
        path = sample_path(ticker)
        try:
            out[ticker] = validate_prices(PriceData(ticker, read_price_file(path), "sample",
                                                    str(path)), window, validation)
        except DataValidationError:
            continue
    return out
