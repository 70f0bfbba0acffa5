import numpy as np
import pytest
from helpers import make_prices

from stockcast.config import ModelConfig, WindowConfig
from stockcast.modeling.windows import make_windows, prepare_windows
from stockcast.splits import min_rows, split_bounds, window_origins


@pytest.mark.parametrize("seq,h", [(5, 1), (10, 3), (30, 5)])
def test_windows_never_look_ahead_and_stay_in_their_split(seq, h):
    n = 400
    cfg = WindowConfig(sequence_length=seq, horizon=h, min_windows_per_split=1)
    b = split_bounds(n, cfg)
    origins = window_origins(n, cfg)
    idx = np.arange(n, dtype=float)
    bounds = {"train": (0, b.train_end), "val": (b.train_end, b.val_end), "test": (b.val_end, n)}
    for split, (lo, hi) in bounds.items():
        x, y = make_windows(idx[:, None], idx, origins[split], seq, h)
        assert x.shape == (len(origins[split]), seq, 1) and y.shape == (len(origins[split]), h)
        # every target strictly after every input of its window
        assert (y.min(axis=1) > x[:, :, 0].max(axis=1)).all()
        # all targets inside the split; inputs never reach past the split's end
        assert (y >= lo).all() and (y < hi).all()
        assert (x < hi).all() and (x >= 1).all()
    # splits are chronological and do not share targets
    assert origins["train"].max() < origins["val"].min() <= origins["val"].max() < origins["test"].min()


def test_include_input_targets_echo_the_inputs_then_the_future():
    idx = np.arange(50, dtype=float)
    x, y = make_windows(idx[:, None], idx, np.array([20]), 5, 2, include_input=True)
    assert x[0, :, 0].tolist() == [16, 17, 18, 19, 20]
    assert y[0].tolist() == [16, 17, 18, 19, 20, 21, 22]


def test_min_rows_is_tight():
    cfg = WindowConfig(sequence_length=10, horizon=2, min_windows_per_split=5)
    n = min_rows(cfg)
    assert min(len(o) for o in window_origins(n, cfg).values()) >= 5
    assert min(len(o) for o in window_origins(n - 3, cfg).values()) < 5


@pytest.mark.parametrize("target", ["price", "log_return", "residual"])
@pytest.mark.parametrize("features", [("Close",), ("Open", "High", "Low", "Close", "Volume"),
                                      ("Close", "LogReturn")])
def test_scaler_sees_only_training_rows_and_round_trips(target, features):
    frame = make_prices(300, seed=1)
    cfg = WindowConfig(sequence_length=10, horizon=3, features=features, min_windows_per_split=5)
    data = prepare_windows(frame, cfg, ModelConfig(target=target))
    # Changing the future must not change the fitted scaler (no look-ahead).
    future_changed = frame.copy()
    future_changed.loc[data.bounds.train_end:, ["Open", "High", "Low", "Close"]] *= 10
    other = prepare_windows(future_changed, cfg, ModelConfig(target=target))
    for attr in ("mean_", "scale_", "min_"):
        if hasattr(data.transformer.scaler, attr):
            np.testing.assert_allclose(getattr(data.transformer.scaler, attr),
                                       getattr(other.transformer.scaler, attr))
    # inverse transform of the true targets gives back the true prices
    for split in (data.train, data.val, data.test):
        np.testing.assert_allclose(data.to_prices(split, split.y), data.actual_prices(split),
                                   rtol=1e-4)
    assert not np.isnan(data.train.x).any()


def test_windows_are_float32_for_long_histories():
    frame = make_prices(20_000, seed=2)
    data = prepare_windows(frame, WindowConfig(), ModelConfig())
    assert data.train.x.dtype == np.float32
    assert data.train.x.shape[1:] == (60, len(WindowConfig().features))


@pytest.mark.parametrize("target", ["price", "log_return", "residual"])
def test_include_input_targets_round_trip_to_future_prices(target):
    frame = make_prices(300, seed=5)
    cfg = WindowConfig(sequence_length=10, horizon=2, include_input=True, min_windows_per_split=5)
    data = prepare_windows(frame, cfg, ModelConfig(target=target))
    assert data.test.y.shape[1] == 12  # the 10 inputs echoed, then 2 future steps
    np.testing.assert_allclose(data.to_prices(data.test, data.test.y), data.actual_prices(data.test),
                               rtol=1e-4)
