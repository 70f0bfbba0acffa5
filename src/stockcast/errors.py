"""Project exceptions: each message names the cause and what the user can do about it."""

from __future__ import annotations


class StockcastError(Exception):
    """Base class for every error stockcast reports to a user (printed without a traceback)."""


class ConfigError(StockcastError):
    """The configuration is malformed or inconsistent."""


class DataSourceError(StockcastError):
    """Prices could not be obtained from the requested source."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        # Transient failures (network, rate limit) are worth retrying; permanent ones are not.
        self.transient = transient


class CacheCorruptError(DataSourceError):
    """A cached price file exists but cannot be read."""


class DataValidationError(StockcastError):
    """Price data failed validation; ``report`` holds every failing check."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class TrainingError(StockcastError):
    """Training could not produce a usable model (e.g. the loss became NaN)."""


class RegistryError(StockcastError):
    """The MLflow tracking store or model registry could not be used."""


class PipelineFailed(StockcastError):
    """Some tickers failed; ``summary`` holds the results of the ones that succeeded."""

    def __init__(self, message: str, summary: dict, failures: dict[str, str]) -> None:
        super().__init__(message)
        self.summary = summary
        self.failures = failures
