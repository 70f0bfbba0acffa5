"""The volatility estimates every scale starts from and the baselines are built on: exact on hand
computations, causal (rows after an origin change nothing), fitted on training rows only."""

import numpy as np
import pytest
from helpers import make_prices

from stockcast.modeling.intervals import calibrated_z, conformal_z
from stockcast.modeling.targets import FEATURE_COLUMNS, make_target
from stockcast.modeling.volatility import (
    ewma_variance,
    fit_garch_t,
    fit_har,
    garch_scale,
    har_scale,
    range_variance,
    squared_returns,
)
from stockcast.modeling.volatility_forecasters import BASELINES


def _perturb_after(frame, row, seed=1, vol=0.05):
    """The same frame with every price after ``row`` replaced by another random walk's."""
    other = make_prices(len(frame), seed=seed, vol=vol)
    changed = frame.copy()
    for col in ("Open", "High", "Low", "Close", "Volume"):
        changed.loc[row + 1:, col] = other.loc[row + 1:, col].to_numpy()
    return changed


def test_range_variance_by_hand_and_on_a_flat_day():
    frame = make_prices(5)
    o, h, lo, c = (frame[k].to_numpy() for k in ("Open", "High", "Low", "Close"))
    t = 3
    expected = (np.log(o[t] / c[t - 1]) ** 2 + 0.5 * np.log(h[t] / lo[t]) ** 2
                - (2 * np.log(2) - 1) * np.log(c[t] / o[t]) ** 2)
    assert range_variance(frame)[t] == pytest.approx(expected, rel=1e-12)
    # A day that opens, trades and closes at one price: the squared close-to-close return.
    flat = frame.copy()
    for col in ("Open", "High", "Low"):
        flat[col] = flat["Close"]
    np.testing.assert_allclose(range_variance(flat)[1:], squared_returns(flat["Close"])[1:],
                               rtol=1e-12)


def test_ewma_of_a_variance_follows_the_recursion_after_the_warm_up():
    x = np.r_[np.nan, np.random.default_rng(0).gamma(2.0, 1e-4, 200)]
    var = ewma_variance(x, lam=0.9, warmup=10)
    assert var[10] == pytest.approx(np.mean(x[1:11]))
    assert var[50] == pytest.approx(0.9 * var[49] + 0.1 * x[50])
    assert var[0] == var[1]


@pytest.mark.parametrize("vol", [0.05, 1e-5])  # wilder, and quieter than anything before
@pytest.mark.parametrize("kind", ["ewma", "rangevol", "har", "garch"])
def test_every_baseline_is_causal(kind, vol):
    frame = make_prices(600)
    origin = 450
    model = BASELINES[kind](horizon=3).fit(frame, 400)
    changed = _perturb_after(frame, origin, vol=vol)
    origins = np.arange(300, origin + 1)
    np.testing.assert_allclose(model.scale(changed, origins), model.scale(frame, origins),
                               rtol=1e-10)
    # And the parameters read the training rows only.
    refit = BASELINES[kind](horizon=3).fit(_perturb_after(frame, 399), 400)
    np.testing.assert_allclose(refit.params, model.params, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(FEATURE_COLUMNS))
def test_every_derived_feature_is_causal(name):
    frame = make_prices(300)
    target = make_target("log_return", ("Close", name))
    rows = target.row_features(frame)[:, 1]
    changed = target.row_features(_perturb_after(frame, 200))[:, 1]
    np.testing.assert_allclose(changed[:201], rows[:201], equal_nan=True)
    assert not np.allclose(changed[202:], rows[202:])
    assert np.isfinite(rows[1:]).all()


def _garch_t_closes(n: int, omega: float, alpha: float, beta: float, nu: float,
                    seed: int = 1) -> np.ndarray:
    """Closes whose percent log returns are a GARCH(1,1) with unit-variance Student-t shocks."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_t(nu, n) * np.sqrt((nu - 2) / nu)
    returns = np.empty(n)
    var = omega / (1 - alpha - beta)
    for t in range(n):
        returns[t] = np.sqrt(var) * shocks[t]
        var = omega + alpha * returns[t] ** 2 + beta * var
    return 100 * np.exp(np.cumsum(np.r_[0.0, returns] / 100))


def test_garch_recovers_a_planted_process_and_forecasts_by_its_recursion():
    # A planted GARCH(1,1)-t (alpha 0.10, beta 0.85, nu 6): the likelihood's optimum is interior,
    # far from the alpha = 0 boundary, so the fit does not depend on the BLAS kernel's rounding.
    close = _garch_t_closes(1200, omega=0.05, alpha=0.10, beta=0.85, nu=6.0)
    params = fit_garch_t(close, 1000)
    omega, alpha, beta, nu = params
    assert 0 < omega and 0.03 < alpha < 0.25 and 0.7 < beta < 0.95 and 3 < nu < 15
    assert abs((alpha + beta) - 0.95) < 0.05
    origins = np.arange(1050, 1100)
    one = (100 * garch_scale(close, origins, params, horizon=1)[:, 0]) ** 2
    returns = 100 * np.diff(np.log(close))
    # From origin t+1: omega + alpha r_{t+1}^2 + beta x (the forecast from origin t).
    np.testing.assert_allclose(one[1:], omega + alpha * returns[origins[1:] - 1] ** 2
                               + beta * one[:-1], rtol=1e-8)
    # Several steps: the variance mean-reverts towards omega / (1 - alpha - beta).
    two = (100 * garch_scale(close, origins, params, horizon=2)) ** 2
    np.testing.assert_allclose(two[:, 1] - two[:, 0], omega + (alpha + beta) * one, rtol=1e-8)


def test_har_recovers_a_planted_persistent_variance():
    rng = np.random.default_rng(3)
    n = 1500
    log_var = np.empty(n)
    log_var[0] = np.log(1e-4)
    for t in range(1, n):  # persistent log variance, mean log(1e-4)
        log_var[t] = np.log(1e-4) + 0.97 * (log_var[t - 1] - np.log(1e-4)) + rng.normal(0, 0.2)
    r = rng.standard_normal(n) * np.exp(log_var / 2)
    close = 100 * np.exp(np.cumsum(r))
    frame = make_prices(n).assign(Close=close, Open=np.r_[100, close[:-1]])
    frame["High"] = frame[["Open", "Close"]].max(axis=1) * 1.0001
    frame["Low"] = frame[["Open", "Close"]].min(axis=1) * 0.9999
    coefs = fit_har(frame, 1200, horizon=5)
    assert coefs.shape == (5, 4)
    assert 0.2 < coefs[0, 1:].sum() < 1.0  # persistent, attenuated by the noisy daily proxy
    origins = np.arange(1200, 1490)
    scale = har_scale(frame, origins, coefs)
    assert (np.diff(scale, axis=1) > 0).all()  # cumulative sd grows with the step
    # Out of sample it tracks the planted variance of the next day.
    assert np.corrcoef(np.log(scale[:, 0] ** 2), log_var[origins + 1])[0, 1] > 0.6


def test_one_step_calibration_is_exactly_split_conformal():
    z = np.random.default_rng(0).standard_t(4, size=(300, 1))
    np.testing.assert_array_equal(calibrated_z(z), conformal_z(z))


def test_several_steps_share_the_tails_and_keep_their_own_level():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 5)) * np.array([1.0, 1.0, 1.2, 1.2, 1.5])
    jumps = z.copy()
    jumps[:8, 4] = 40.0  # eight jumps at step 5 (2 % of its residuals)
    # One step's own 97.5 % quantile is moved by its jumps; the shared shape hardly.
    own = conformal_z(jumps)[4, -1] - conformal_z(z)[4, -1]
    shared = calibrated_z(jumps)[4, -1] - calibrated_z(z)[4, -1]
    assert own > 1.0 and abs(shared) < own / 4
    q = calibrated_z(z)
    np.testing.assert_allclose(q[:, -1] / q[0, -1], [1, 1, 1.2, 1.2, 1.5], rtol=0.12)


def test_a_calibrated_baseline_covers_on_new_data():
    frame = make_prices(2000, vol=0.015)
    model = BASELINES["rangevol"].fitted(frame, 1200, np.arange(1200, 1500), horizon=1)
    origins = np.arange(1500, 1999)
    fc = model.forecast_at(frame, origins)
    lo, hi = fc.interval(0.95)
    actual = frame["Close"].to_numpy()[origins + 1]
    assert 0.92 < np.mean((actual >= lo[:, 0]) & (actual <= hi[:, 0])) < 0.98
    np.testing.assert_array_equal(fc.point[:, 0], frame["Close"].to_numpy()[origins])


@pytest.mark.parametrize("kind", ["ewma", "rangevol", "har", "garch"])
def test_a_pickle_from_before_the_baseline_classes_loads_as_its_model(kind):
    # Served models pickled before one class per baseline held a VolatilityForecaster whose
    # `kind` field chose the model: they load as that model's class and forecast the same.
    import pickle

    from stockcast.modeling.volatility_forecasters import VolatilityForecaster

    frame = make_prices(600)
    fitted = BASELINES[kind].fitted(frame, 400, np.arange(400, 500), horizon=2)
    old = VolatilityForecaster.__new__(VolatilityForecaster)
    old.__dict__.update({"kind": kind, **fitted.__dict__})  # the old layout: kind a field
    loaded = pickle.loads(pickle.dumps(old))
    assert type(loaded) is BASELINES[kind] and "kind" not in loaded.__dict__
    origins = np.arange(500, 590)
    np.testing.assert_array_equal(loaded.forecast_at(frame, origins).quantiles,
                                  fitted.forecast_at(frame, origins).quantiles)
    again = pickle.loads(pickle.dumps(fitted))  # a pickle of today's classes
    assert type(again) is type(fitted) and loaded.tag == fitted.tag
    np.testing.assert_array_equal(again.forecast_at(frame, origins).quantiles,
                                  fitted.forecast_at(frame, origins).quantiles)


def test_each_baseline_is_named_once():
    # Key, tag, metric prefix and names come from the one registry, each unique.
    models = list(BASELINES.values())
    for attribute in ("kind", "tag", "prefix", "name", "short"):
        assert len({getattr(m, attribute) for m in models}) == len(models), attribute
