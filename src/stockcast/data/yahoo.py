"""Yahoo Finance through yfinance: the only module that imports it, and the one retry policy
for its requests (transient failures only: an unknown ticker will not get better)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

import pandas as pd
import yfinance as yf
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from stockcast.data.files import normalize_prices
from stockcast.errors import DataSourceError

log = logging.getLogger(__name__)

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


DETAIL_CHARS = 100


def short_detail(detail: str) -> str:
    """The cause in a few words for the console (curl's own phrase where there is one); the
    whole text goes to the log file."""
    if "curl: (" in detail:
        detail = detail[detail.index("curl: ("):].split(". ")[0]
    return detail if len(detail) <= DETAIL_CHARS else detail[:DETAIL_CHARS - 3] + "..."


def _unreachable(ticker: str, detail: str) -> DataSourceError:
    log.debug("%s: Yahoo Finance unreachable: %s", ticker, detail)
    return DataSourceError(
        f"could not reach Yahoo Finance for {ticker} ({short_detail(detail)}). Check the "
        "network, or run offline with --source cache or --source sample.",
        transient=True,
    )


def classify_error(ticker: str, exc: Exception, yf_log: list[str] | None = None) -> DataSourceError:
    """A DataSourceError naming the cause; ``.transient`` says whether a retry may help."""
    text = f"{type(exc).__name__}: {exc}"
    lowered = text.lower()
    rate_limited = isinstance(exc, yf.exceptions.YFRateLimitError) or "too many requests" in lowered
    network_noise = [m for m in yf_log or [] if any(h in m.lower() for h in _NETWORK_HINTS)]
    if network_noise and not rate_limited:
        return _unreachable(ticker, network_noise[-1][:200])
    if rate_limited:
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
        return _unreachable(ticker, text)
    return DataSourceError(f"Yahoo Finance failed for {ticker}: {text}", transient=False)


def fetch_prices(
    ticker: str, start: dt.date | None, end: dt.date | None, *, timeout: float = 10.0
) -> pd.DataFrame:
    """One download of daily adjusted OHLCV for one ticker, normalised (``end`` exclusive).

    Raises DataSourceError naming the ticker and the cause; ``.transient`` tells whether a
    retry may help.
    """
    yf_logger = logging.getLogger("yfinance")
    captured = _YFinanceLog()
    yf_logger.addHandler(captured)
    try:
        # Explicit on purpose: auto_adjust defaults changed across yfinance versions.
        # Ticker.history always returns single-level columns, and raise_errors stops it from
        # printing a failure and returning an empty frame.
        raw = yf.Ticker(ticker).history(
            start=start, end=end, period=None if start else "max", interval="1d",
            auto_adjust=True, actions=False, timeout=timeout, raise_errors=True,
        )
    except Exception as exc:  # yfinance raises many types, curl's included; classified here
        raise classify_error(ticker, exc, captured.messages) from exc
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


def _log_retry(state) -> None:
    log.info("%s (attempt %d; retrying in %.1fs)", state.outcome.exception(),
                state.attempt_number, state.next_action.sleep)


def fetch_with_retries(
    ticker: str, start: dt.date | None, end: dt.date | None, *, retries: int,
    backoff_seconds: float, timeout: float = 20.0, sleep: Callable[[float], None] = time.sleep,
) -> pd.DataFrame:
    """``fetch_prices`` with exponential backoff (``backoff_seconds`` x 1, 2, 4 ...) on
    transient errors only; a permanent error raises at once."""
    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        wait=wait_exponential(multiplier=backoff_seconds, min=0, max=60),
        retry=retry_if_exception(lambda exc: getattr(exc, "transient", False)),
        before_sleep=_log_retry,
        reraise=True,
        sleep=sleep,
    )
    return retrying(fetch_prices, ticker, start, end, timeout=timeout)
