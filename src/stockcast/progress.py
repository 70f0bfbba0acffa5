"""Training progress a person can watch: one line per ticker every few seconds (epoch, losses,
seconds per epoch, the most it can still take), logged to ``stockcast.progress``, which the
console shows even when it is quiet otherwise. On a terminal a line every 2 s, piped or in a
log every 10 s; lines of tickers training at once interleave but never overwrite each other."""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("stockcast.progress")

TTY_SECONDS = 2.0
PIPED_SECONDS = 10.0


class EpochProgress:
    """An ``on_epoch`` callback for ``train_model``: throttled progress lines for ``ticker``."""

    def __init__(self, ticker: str, epochs: int, interactive: bool | None = None) -> None:
        self.ticker, self.epochs = ticker, epochs
        tty = sys.stderr.isatty() if interactive is None else interactive
        self.every = TTY_SECONDS if tty else PIPED_SECONDS
        self.start = time.perf_counter()
        self.last = -float("inf")
        self.best = float("inf")

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:
        now = time.perf_counter()
        self.best = min(self.best, metrics.get("val_loss", float("inf")))
        if epoch != 1 and epoch != self.epochs and now - self.last < self.every:
            return
        self.last = now
        per_epoch = (now - self.start) / epoch
        log.info("%s: epoch %d/%d, train_loss %.4g, val_loss %.4g (best %.4g), %.1f s/epoch, "
                 "at most %.0f s to go (early stopping usually ends sooner)", self.ticker,
                 epoch, self.epochs, metrics.get("train_loss", float("nan")),
                 metrics.get("val_loss", float("nan")), self.best, per_epoch,
                 per_epoch * (self.epochs - epoch))
