"""A stop request (SIGTERM, Ctrl-C) ends training at the next mini-batch."""

import os
import signal

import numpy as np
import pytest
from helpers import error_raised_while_handling

from stockcast import stopping
from stockcast.config import ModelConfig, TrainConfig
from stockcast.modeling.trainer import train_model
from stockcast.modeling.windows import Split


def _split(n=64):
    x = np.random.default_rng(0).standard_normal((n, 8, 1)).astype(np.float32)
    y = np.zeros((n, 1), np.float32)
    return Split(x, y, np.arange(n), np.ones((n, 1), np.float32))


class Interrupted(BaseException):
    """Stands for what a signal handler raises in the run's thread (Prefect's
    TerminationSignal for SIGTERM)."""


def test_a_signal_passing_through_the_run_asks_training_to_stop_and_goes_on():
    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(Interrupted):  # the run itself still ends by the signal
            with stopping.trainings_stop_on(Interrupted):
                assert not stopping.stop_requested()
                os.kill(os.getpid(), signal.SIGTERM)
        assert stopping.stop_requested() and stopping.stop_reason() == "SIGTERM"
        # The handler is the one that was installed (Prefect acknowledges a cancellation only
        # while its own is).
        assert signal.getsignal(signal.SIGTERM) is handler
        with pytest.raises(stopping.RunStopped, match="training: stopped by SIGTERM"):
            train_model(_split(), _split(), ModelConfig(hidden_size=4, target="price"),
                        TrainConfig(epochs=50, progress=False, device="cpu", threads=1))
        # Other exceptions pass through without a stop request.
        stopping.clear()
        with pytest.raises(ValueError), stopping.trainings_stop_on(Interrupted):
            raise ValueError("a bug")
        assert not stopping.stop_requested()
    finally:
        signal.signal(signal.SIGTERM, previous)
        stopping.clear()
    # Cleared, training runs again.
    res = train_model(_split(), _split(), ModelConfig(hidden_size=4, target="price"),
                      TrainConfig(epochs=2, progress=False, device="cpu", threads=1))
    assert len(res.history) == 2



def test_a_signal_turned_into_another_error_is_still_a_stop():
    interrupted = Interrupted()
    error = error_raised_while_handling(interrupted)
    assert stopping.found_in_chain(error, (Interrupted,)) is interrupted
    assert stopping.found_in_chain(ValueError("a bug"), (Interrupted,)) is None
    try:  # the run ends by the signal, as if it had passed through unchanged
        with pytest.raises(Interrupted), stopping.trainings_stop_on(Interrupted):
            raise error
        assert stopping.stop_reason() == "SIGTERM"
    finally:
        stopping.clear()
