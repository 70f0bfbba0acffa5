"""The one retry policy for MLflow calls: only transient failures are retried (the network,
HTTP 5xx from a tracking server, a busy SQLite database), ``tracking.max_retries`` times with
exponential backoff; a bug or a refused request fails at once with its own message."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import mlflow
from mlflow.exceptions import MlflowException, RestException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from stockcast.errors import RegistryError

log = logging.getLogger(__name__)
T = TypeVar("T")
BACKOFF_SECONDS = 1.0  # first wait; doubles per retry (tracking.max_retries sets how many)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: network errors and timeouts, HTTP 5xx answers
    from a tracking server, and a locked/busy SQLite database."""
    import requests
    import sqlalchemy.exc

    for err in _chain(exc):
        if isinstance(err, ConnectionError | TimeoutError | requests.ConnectionError
                      | requests.Timeout):
            return True
        if isinstance(err, sqlalchemy.exc.OperationalError) and any(
                word in str(err).lower() for word in ("locked", "busy")):
            return True
        from_server = isinstance(err, RestException) or str(err).startswith("API request to")
        if isinstance(err, MlflowException) and from_server and err.get_http_status_code() >= 500:
            return True
    return False


def _log_retry(state) -> None:
    log.warning("MLflow call failed (%s); retrying in %.1fs", state.outcome.exception(),
                state.next_action.sleep)


def with_retries(what: str, fn: Callable[[], T], retries: int) -> T:
    """Call ``fn``; retry transient failures ``retries`` times with exponential backoff. A
    failure that remains is a RegistryError naming the store; MLflow's refusals are too."""
    retrying = Retrying(stop=stop_after_attempt(retries + 1),
                        wait=wait_exponential(multiplier=BACKOFF_SECONDS, max=30),
                        retry=retry_if_exception(is_transient), before_sleep=_log_retry,
                        reraise=True)
    try:
        return retrying(fn)
    except Exception as exc:
        if is_transient(exc):
            raise RegistryError(
                f"MLflow {what} failed after {retries + 1} attempt(s): the tracking store "
                f"({mlflow.get_tracking_uri()}) did not answer ({type(exc).__name__}: "
                f"{str(exc)[:300]}). Check that it is running and reachable; nothing was "
                "promoted.") from exc
        if isinstance(exc, MlflowException):
            raise RegistryError(f"MLflow {what} failed: MLflow refused the request "
                                f"({str(exc)[:300]}); nothing was promoted.") from exc
        raise
