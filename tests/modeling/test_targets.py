"""The target contract: each formulation round-trips to prices, its distribution starts at the
EWMA band, and models pickled before the target classes still load."""

import pickle

import numpy as np
import pytest
from helpers import make_prices

from stockcast.config import ModelConfig, WindowConfig
from stockcast.modeling.intervals import target_distribution
from stockcast.modeling.targets import TARGETS, LogReturnTarget, ResidualTarget
from stockcast.modeling.volatility import ewma_volatility, range_volatility
from stockcast.modeling.windows import SeriesTransformer, prepare_windows

WINDOW = WindowConfig(sequence_length=10, horizon=3, min_windows_per_split=5,
                      features=["Close", "High", "Low", "Open", "Volume", "LogReturn"])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_scaled_targets_map_back_to_the_true_prices(target):
    data = prepare_windows(make_prices(400), WINDOW, ModelConfig(target=target))
    for split in (data.train, data.val, data.test):
        np.testing.assert_allclose(data.to_prices(split, split.y), data.actual_prices(split),
                                   rtol=1e-5)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_distribution_of_the_true_targets_is_the_realised_move(target):
    data = prepare_windows(make_prices(400), WINDOW, ModelConfig(target=target))
    test, t = data.test, data.transformer
    loc, _, log_space = target_distribution(t, test.y, np.ones_like(test.y))
    realised = t.target.realised(data.actual_prices(test), data.last_close(test))
    assert log_space == t.target.log_space
    np.testing.assert_allclose(loc, realised, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("volatility", ["range", "close"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_head_starts_at_the_ewma_band(target, volatility):
    data = prepare_windows(make_prices(400), WINDOW,
                           ModelConfig(target=target, volatility=volatility))
    test = data.test
    _, scale, log_space = target_distribution(data.transformer, test.y, test.base)
    daily = range_volatility(data.frame) if volatility == "range" else ewma_volatility(data.close)
    sigma = daily[test.origins]
    one_day = sigma if log_space else sigma * data.last_close(test)
    np.testing.assert_allclose(scale[:, 0], one_day, rtol=1e-5)
    np.testing.assert_allclose(scale[:, 2], one_day * np.sqrt(3), rtol=1e-5)  # random walk


def test_log_return_reconstruction_from_last_close():
    t = LogReturnTarget(("Close",))
    t.scaler = type("Id", (), {"mean_": np.array([0.0]), "scale_": np.array([1.0])})()
    prices = t.to_prices(np.log(np.array([[1.1, 1.0, 0.5]])), np.array([100.0]))
    np.testing.assert_allclose(prices, [[110.0, 110.0, 55.0]])


@pytest.mark.parametrize("target", ["log_return", "residual", "price"])
def test_a_transformer_pickled_with_the_target_as_a_name_still_loads(target):
    frame = make_prices(400)
    data = prepare_windows(frame, WINDOW, ModelConfig(target=target))
    new = data.transformer
    old_state = {"target": target, "features": new.features, "scaler_kind": "auto",
                 "sequence_length": new.sequence_length, "horizon": new.horizon,
                 "include_input": False, "scaler": new.scaler,
                 "residual_scale": getattr(new.target, "residual_scale", 1.0)}
    old = SeriesTransformer.__new__(SeriesTransformer)
    old.__setstate__(old_state)
    assert type(old.target) is type(new.target)
    x_new, y_new = new.windows(frame, data.test.origins)
    x_old, y_old = pickle.loads(pickle.dumps(old)).windows(frame, data.test.origins)
    np.testing.assert_array_equal(x_new, x_old)
    np.testing.assert_array_equal(y_new, y_old)
    if target == "residual":
        assert isinstance(old.target, ResidualTarget)
        assert old.target.residual_scale == new.target.residual_scale


@pytest.mark.parametrize("volatility", ["close", "range", "har", None])
def test_a_transformer_pickled_with_the_base_scale_as_a_name_still_loads(volatility):
    # Before the base-scale classes a transformer kept `volatility` (none at all before the
    # range inputs: the close EWMA) and `har_coefs` as fields; it loads with the same scale.
    from stockcast.modeling.intervals import base_scale

    frame = make_prices(400)
    data = prepare_windows(frame, WINDOW, ModelConfig(volatility=volatility or "close"))
    new = data.transformer
    state = {k: v for k, v in new.__dict__.items() if k != "daily_scale"}
    if volatility is not None:
        state["volatility"] = volatility
        state["har_coefs"] = getattr(new.daily_scale, "coefs", None)
    old = SeriesTransformer.__new__(SeriesTransformer)
    old.__dict__.update(state)  # the old layout, as its pickle holds it
    loaded = pickle.loads(pickle.dumps(old))
    assert type(loaded.daily_scale) is type(new.daily_scale)
    assert loaded.input_columns == new.input_columns
    np.testing.assert_array_equal(base_scale(loaded, frame, data.test.origins),
                                  base_scale(new, frame, data.test.origins))
