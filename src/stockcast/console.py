"""The edge's side effects, applied by the CLI only: environment defaults for Prefect and
MLflow, and where log records go (the log file always; the console by level)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from stockcast.errors import StockcastError
from stockcast.stopping import request_stop, stop_reason

log = logging.getLogger("stockcast")

# Quiet, offline-friendly defaults for Prefect and MLflow (users may override them).
ENV_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DO_NOT_TRACK": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "stockcast",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GIT_PYTHON_REFRESH": "quiet",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    # MLflow's HTTP settings belong to registry.store.MlflowStore (applied wherever it is
    # used: the CLI, `make serve`, a worker).
}


def setup_logging(log_dir: Path, verbose: bool) -> Path:
    """Everything to ``log_dir/stockcast.log``; INFO and up (DEBUG with ``verbose``) to stderr."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = log_dir / "stockcast.log"
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    file_handler = logging.FileHandler(log_file)
    file_handler.setFormatter(fmt)
    file_handler.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # Quiet by default: warnings (one line per fallback), errors and the training progress
    # lines (``stockcast.progress``); the rest is in the file.
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        console.addFilter(lambda r: r.levelno >= logging.WARNING
                          or r.name == "stockcast.progress")
    root = logging.getLogger("stockcast")
    root.setLevel(logging.DEBUG)
    root.handlers[:] = [file_handler, console]
    root.propagate = False
    return log_file


class _TracebackToLogFile(logging.Filter):
    """Prefect logs a traceback for every failed task and flow. For our own errors (which
    carry a message a user can act on) the traceback goes to the log file only."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, StockcastError):
            log.debug("%s", record.getMessage(), exc_info=record.exc_info)
            record.exc_info, record.exc_text = None, None
        return True


class _RunFailuresToLogFile(logging.Filter):
    """On Prefect's console handler: a failed task or flow run's error lines (Prefect logs
    three or four per failure, the flow our own one) go to the log file only; the command
    ends with one line per failing ticker, and the Prefect UI keeps them all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.name in ("prefect.flow_runs",
                                                                "prefect.task_runs"):
            log.debug("%s: %s", record.name, record.getMessage())
            return False
        return True


def quiet_prefect_failures(verbose: bool) -> None:
    """After Prefect is imported: each failure once on the console (``_RunFailuresToLogFile``)
    unless ``verbose``."""
    if verbose:
        return
    handlers = [*logging.getLogger().handlers, *logging.getLogger("prefect").handlers]
    for handler in handlers:  # Prefect 3.8 puts its console handler on the root logger
        if isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler) and not any(
                isinstance(f, _RunFailuresToLogFile) for f in handler.filters):
            handler.addFilter(_RunFailuresToLogFile())


def quiet_prefect_tracebacks() -> None:
    """Our own errors' tracebacks go to the log file only (Prefect logs one per failure)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_TracebackToLogFile())


def route_tool_logs(verbose: bool) -> None:
    """After MLflow and Prefect are imported: their own chatter (pickle notices, database
    set-up) and yfinance's error lines go to the log file; the console keeps errors only,
    unless ``verbose``."""
    quiet_prefect_failures(verbose)
    files = [h for h in logging.getLogger("stockcast").handlers
             if isinstance(h, logging.FileHandler)]
    for name in ("mlflow", "yfinance", "alembic"):
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            # The tool's own console handler (a plain StreamHandler); another handler there
            # is its host's (a test runner's capture, an application's) and keeps its level.
            if type(handler) is logging.StreamHandler and not verbose:
                handler.setLevel(logging.ERROR)
        logger.handlers.extend(h for h in files if h not in logger.handlers)
        logger.propagate = verbose


def apply_env_defaults(root: Path, verbose: bool = False) -> None:
    """Set ``ENV_DEFAULTS`` where the user has not set them (their values win), and keep the
    tools' own state under the project home ``root`` where they allow it: matplotlib's cache
    always; Prefect's home (its temporary server's database) unless the user has a Prefect
    profile of their own in ~/.prefect."""
    for key, value in ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if verbose:  # everything, also when a parent process chose quiet for itself
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "DEBUG"
    else:  # Prefect's own run lines stay in the Prefect UI and API, not the console, and so
        # do MLflow's "View run ... / View experiment ..." lines for an HTTP tracking store
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MPLCONFIGDIR", str(root / ".cache" / "matplotlib"))
    if not (Path.home() / ".prefect" / "profiles.toml").exists():
        os.environ.setdefault("PREFECT_HOME", str(root / ".prefect"))


def stop_on_signals() -> None:
    """SIGTERM (Prefect's cancellation, process supervisors) and Ctrl-C stop a run: every
    training in the process ends at its next mini-batch (``stopping``), and the main thread
    gets KeyboardInterrupt so the command returns at once (143 for SIGTERM, 130 for Ctrl-C).
    Only from the main thread (signal handlers cannot be set elsewhere)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        request_stop(signal.Signals(signum).name)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)


def stopped_by() -> str:
    """Which signal stopped the run ("Ctrl-C" when none was recorded)."""
    return (stop_reason() or "Ctrl-C").replace("SIGINT", "Ctrl-C")
