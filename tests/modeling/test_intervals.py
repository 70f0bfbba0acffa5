"""EWMA volatility, conformal calibration and the calibrated intervals end to end."""

import numpy as np
import pandas as pd
import pytest

from stockcast.config import ModelConfig, TrainConfig, WindowConfig
from stockcast.evaluation.baselines import ewma_band
from stockcast.modeling.intervals import conformal_z
from stockcast.modeling.recipe import fit_and_calibrate
from stockcast.modeling.volatility import ewma_volatility


def heteroscedastic_prices(n=3000, seed=0):
    """A GARCH(1,1) random walk: volatility clusters, fat tails, no predictable mean."""
    rng = np.random.default_rng(seed)
    var, r = 1e-4, np.empty(n)
    for t in range(n):
        r[t] = np.sqrt(var) * rng.standard_t(6) / np.sqrt(1.5)
        var = 2e-6 + 0.08 * r[t] ** 2 + 0.9 * var
    close = 100 * np.exp(np.cumsum(r))
    return pd.DataFrame({"Date": pd.bdate_range("2000-01-03", periods=n), "Open": close,
                         "High": close * 1.001, "Low": close * 0.999, "Close": close,
                         "Volume": 1e6})


def test_ewma_volatility_is_causal_and_follows_the_recursion():
    close = heteroscedastic_prices(300)["Close"].to_numpy()
    sigma = ewma_volatility(close)
    r = np.diff(np.log(close))
    # warm-up: the expanding mean of the first month's squared returns (row t: returns <= t)
    assert sigma[10] == pytest.approx(np.sqrt(np.mean(r[:10] ** 2)))
    var = np.mean(r[:21] ** 2)
    assert sigma[21] == pytest.approx(np.sqrt(var))
    for t in range(21, 50):
        var = 0.94 * var + 0.06 * r[t] ** 2
    assert sigma[50] == pytest.approx(np.sqrt(var))
    changed = close.copy()
    changed[200:] *= 1.5  # the future cannot change the past's volatility
    np.testing.assert_allclose(ewma_volatility(changed)[:200], sigma[:200])


def test_a_short_history_starts_from_a_month_not_one_squared_return():
    """What the served model sees (a window plus one close) agrees with the full history."""
    close = heteroscedastic_prices(1500)["Close"].to_numpy()
    full = ewma_volatility(close)[-1]
    short = ewma_volatility(close[-61:])[-1]
    lam = 0.94
    r = np.diff(np.log(close[-61:]))
    one_return = r[0] ** 2
    for t in range(1, len(r)):  # the old start: the first squared return
        one_return = lam * one_return + (1 - lam) * r[t] ** 2
    assert abs(short - full) < abs(np.sqrt(one_return) - full)
    assert short == pytest.approx(full, rel=0.05)


def test_conformal_quantiles_restore_coverage_of_a_misscaled_forecaster():
    rng = np.random.default_rng(1)
    n = 20_000
    sigma = np.exp(rng.normal(0, 0.5, 2 * n))  # heteroscedastic, known scale
    y = sigma * rng.standard_t(5, 2 * n)  # fat tails: Gaussian quantiles would be wrong
    z = (y / (2 * sigma))[:, None]  # a forecaster whose scale is off by 2x
    zq = conformal_z(z[:n])  # calibrate on the first half, check on the second
    lo, hi = zq[0, 0] * 2 * sigma[n:], zq[0, 4] * 2 * sigma[n:]
    assert np.mean((y[n:] >= lo) & (y[n:] <= hi)) == pytest.approx(0.95, abs=0.006)
    lo80, hi80 = zq[0, 1] * 2 * sigma[n:], zq[0, 3] * 2 * sigma[n:]
    assert np.mean((y[n:] >= lo80) & (y[n:] <= hi80)) == pytest.approx(0.80, abs=0.01)


@pytest.mark.slow  # trains an LSTM: a model-quality test
def test_calibrated_lstm_intervals_cover_on_an_unseen_heteroscedastic_series():
    frame = heteroscedastic_prices()
    window = WindowConfig(sequence_length=20, horizon=2)
    fit = fit_and_calibrate(frame, window, ModelConfig(hidden_size=8, num_layers=1),
                            TrainConfig(epochs=3, progress=False, threads=1, device="cpu"))
    data = fit.data
    last = data.last_close(data.test)
    forecast = fit.forecaster.forecast_split(data.test, last)
    actual = data.actual_prices(data.test)
    for coverage, tolerance in ((0.95, 0.03), (0.8, 0.05)):
        lo, hi = forecast.interval(coverage)
        assert np.all(lo < hi)
        assert np.mean((actual >= lo) & (actual <= hi)) == pytest.approx(coverage, abs=tolerance)
    # Adaptive: wider when the EWMA volatility is high (the band moves with the clusters).
    width = (forecast.interval(0.95)[1] - forecast.interval(0.95)[0])[:, 0] / last
    band = ewma_band(data.frame, data.test.origins, 2, forecast.levels)
    ewma_width = (band[:, 0, 4] - band[:, 0, 0]) / last
    assert np.corrcoef(width, ewma_width)[0, 1] > 0.8
