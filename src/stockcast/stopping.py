"""Stopping a run when told: SIGTERM (what Prefect's cancellation and process supervisors
send) or Ctrl-C. The CLI's handler, or the flow when Prefect's SIGTERM handler interrupts it
(``trainings_stop_on``), records the request here; training checks it at every mini-batch and
raises ``RunStopped``, so the threads that train end within a batch instead of training on to
the last epoch, and the process (with the temporary Prefect server it started) exits.
Nothing is registered or promoted by a stopped run: those stages come after training."""

from __future__ import annotations

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
def trainings_stop_on(*signals: type[BaseException], why: str = "SIGTERM") -> Iterator[None]:
    """While a run's main thread is inside: when one of ``signals`` (the exception a signal
    handler raises there, e.g. Prefect's ``TerminationSignal`` for SIGTERM) passes through,
    itself or inside an error raised while handling it (``found_in_chain``), every training
    in the process is asked to stop at its next mini-batch, and the signal goes on. The
    signal handler itself is left alone: Prefect acknowledges a cancellation (and ends the
    run Cancelled rather than Crashed) only while its own SIGTERM handler is installed, and a
    thread that trains cannot be interrupted by it."""
    clear()  # a fresh run in this process
    try:
        yield
    except BaseException as exc:
        signal = found_in_chain(exc, signals)
        if signal is None:
            raise
        request_stop(why)
        if signal is exc:
            raise
        raise signal from None  # turned into another error on its way: still the signal


def found_in_chain(exc: BaseException, kinds: tuple[type[BaseException], ...]
                   ) -> BaseException | None:
    """The first exception of ``kinds`` among ``exc``, its cause and the exceptions it was
    raised while handling; None if there is none. Prefect's engine can turn its SIGTERM
    exception into another error (a task interrupted before its run was created fails with
    "Task run is not set"): the signal is still in that error's chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
