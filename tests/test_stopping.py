"""A stop request (SIGTERM, Ctrl-C) ends training at the next mini-batch."""

import os
import signal

import numpy as np
import pytest

from stockcast import stopping
from stockcast.config import ModelConfig, TrainConfig
from stockcast.modeling.trainer import train_model
from stockcast.modeling.windows import Split


def _split(n=64):
    x = np.random.default_rng(0).standard_normal((n, 8, 1)).astype(np.float32)
    y = np.zeros((n, 1), np.float32)
    return Split(x, y, np.arange(n), np.ones((n, 1), np.float32))


def test_sigterm_asks_training_to_stop_then_reaches_the_handler_that_was_there():
    heard = []

    def theirs(signum, frame):
        heard.append(signum)

    previous = signal.signal(signal.SIGTERM, theirs)
    try:
        with stopping.training_stops_on_sigterm():
            assert not stopping.stop_requested()
            os.kill(os.getpid(), signal.SIGTERM)
            assert stopping.stop_requested() and stopping.stop_reason() == "SIGTERM"
            assert heard == [signal.SIGTERM]  # Prefect's handler still hears it
            with pytest.raises(stopping.RunStopped, match="training: stopped by SIGTERM"):
                train_model(_split(), _split(), ModelConfig(hidden_size=4, target="price"),
                            TrainConfig(epochs=50, progress=False, device="cpu", threads=1))
        assert signal.getsignal(signal.SIGTERM) is theirs  # restored when the flow ends
        assert len(heard) == 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        stopping.clear()
    # Cleared, training runs again.
    res = train_model(_split(), _split(), ModelConfig(hidden_size=4, target="price"),
                      TrainConfig(epochs=2, progress=False, device="cpu", threads=1))
    assert len(res.history) == 2
