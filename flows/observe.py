"""What an operator sees in Prefect: the project's own log records in the run logs (in every
context: CLI, `serve`, a worker), and one table artifact per flow run."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture
from prefect.logging.handlers import APILogHandler

log = logging.getLogger(__name__)


@contextmanager
def project_logs_in_prefect(level: int = logging.INFO) -> Iterator[None]:
    """Send the ``stockcast`` loggers' records (warnings included) to the Prefect run logs of
    the flow or task that emitted them, for as long as the flow runs."""
    logger = logging.getLogger("stockcast")
    previous = logger.level
    # PREFECT_LOGGING_EXTRA_LOGGERS attaches the handler but leaves the level to the root's
    # (WARNING): INFO records (progress, decisions) would never reach it.
    if logger.getEffectiveLevel() > level:
        logger.setLevel(level)
    handler = None
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        handler = APILogHandler(level=level)
        logger.addHandler(handler)
    try:
        yield
    finally:
        if handler is not None:
            handler.flush()
            logger.removeHandler(handler)
        logger.setLevel(previous)


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    return "" if value is None else value


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    """A table artifact (one row per ticker) on the current flow run."""
    if rows:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        create_table_artifact([{c: _cell(row.get(c)) for c in columns} for row in rows],
                              key=key, description=description)


def publish_warning(key: str, markdown: str) -> None:
    """A markdown artifact an operator cannot miss (stale data, drift)."""
    create_markdown_artifact(markdown, key=key, description="stockcast warning")


def publish_markdown(key: str, markdown: str, description: str) -> None:
    """A markdown artifact (text that a table cell would cut off)."""
    create_markdown_artifact(markdown, key=key, description=description)


def end_never_run(never_run: list[tuple[PrefectFuture, str, str]],
                  patience_s: float = 5.0) -> int:
    """End the task runs that never ran because an upstream stage failed, given as (future,
    ticker, why): Cancelled with why (``not run: GOOG failed at validated: ...``) and named
    ``<stage>-<TICKER>`` like the runs that did run. Prefect leaves them Pending ("NotReady")
    with a random name, drawn as endless bars in the timeline. Their records reach the
    server shortly after the futures finish, so each is waited for (``patience_s`` in all).
    Best effort: returns how many were ended, and never fails the flow."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Cancelled

    ended, deadline = 0, time.monotonic() + patience_s
    try:
        with get_client(sync_client=True) as client:
            for future, ticker, why in never_run:
                while True:
                    try:
                        record = client.read_task_run(future.task_run_id)
                        break
                    except ObjectNotFound:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                client.set_task_run_state(future.task_run_id, Cancelled(message=why),
                                          force=True)
                stage = record.name.rsplit("-", 1)[0]  # "freshness-a9e": never templated
                client.set_task_run_name(future.task_run_id, f"{stage}-{ticker}")
                ended += 1
    except Exception as exc:  # the timeline only: the run's outcome is already decided
        log.debug("could not end %d never-run task run(s): %s", len(never_run) - ended, exc)
    return ended
