"""Stopping a run when told: SIGTERM (what Prefect's cancellation and process supervisors
send) or Ctrl-C. The CLI's handler records the request here; training checks it at every
mini-batch and raises ``RunStopped``, so the threads that train end within a batch instead of
training on to the last epoch, and the process (with the temporary Prefect server it started)
exits. Nothing is registered or promoted by a stopped run: those stages come after training."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from stockcast.errors import StockcastError

_REQUESTED = threading.Event()
_WHY: list[str] = []


class RunStopped(StockcastError):
    """The run was told to stop (a signal) before it finished."""


def request_stop(why: str) -> None:
    """Ask every training in this process to stop at its next mini-batch."""
    _WHY[:] = [why]
    _REQUESTED.set()


def stop_requested() -> bool:
    """Whether a stop was requested."""
    return _REQUESTED.is_set()


def stop_reason() -> str | None:
    """What asked for the stop (``SIGTERM``, ``SIGINT``), or None."""
    return _WHY[0] if _REQUESTED.is_set() and _WHY else None


def raise_if_stopped(where: str) -> None:
    """RunStopped naming the request and where it was noticed, once a stop was requested."""
    if _REQUESTED.is_set():
        why = _WHY[0] if _WHY else "a stop request"
        raise RunStopped(f"{where}: stopped by {why}; nothing was registered or promoted, "
                         "the cache and the champion are as they were")


def clear() -> None:
    """Forget a stop request (for the next run in the same process, and for tests)."""
    _REQUESTED.clear()
    _WHY.clear()


@contextmanager
def training_stops_on_sigterm() -> Iterator[None]:
    """While a flow runs: SIGTERM first asks every training to stop (``request_stop``), then
    goes to the handler that was installed (Prefect's engine installs its own when a flow
    starts, which reports the crash but cannot stop a thread that trains). Main thread only;
    elsewhere (a flow run in a worker thread) it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    clear()  # a fresh run in this process
    previous = signal.getsignal(signal.SIGTERM)

    def handler(signum: int, frame: object) -> None:
        request_stop("SIGTERM")
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
