"""Process-wide training slots: at most ``orchestration.max_workers`` trainings at once in one
process, whichever stage trains (a ticker's fit, its refit, a walk-forward fold's fits)."""

from __future__ import annotations

import threading

# The flow's default thread runner is unbounded, and a wave's eight trainings on two cores
# each ran four times slower (the trainer's timers summed to 2.4x the cores' wall time in
# bench/portfolio.py).
_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_GUARD = threading.Lock()


def training_slot(max_workers: int) -> threading.BoundedSemaphore:
    """The process's semaphore for ``max_workers`` concurrent trainings (one per bound)."""
    n = max(1, int(max_workers))
    with _GUARD:
        return _SLOTS.setdefault(n, threading.BoundedSemaphore(n))
