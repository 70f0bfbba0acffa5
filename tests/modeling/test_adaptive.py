"""The adaptive calibration of served intervals: causal, static when switched off, widening
after a run of misses and narrowing back, settling at the promised coverage."""

import numpy as np
import pandas as pd
import pytest
from helpers import make_prices

from stockcast.config import IntervalConfig
from stockcast.modeling.adaptive import Tracking, adapted_forecast, track_quantiles
from stockcast.modeling.intervals import QUANTILES
from stockcast.modeling.volatility_forecasters import BASELINES

Z0 = np.array([[-1.96, -1.2816, 0.0, 1.2816, 1.96]])  # static quantiles, one step


def _regime_prices(n: int, jump_at: int, factor: float, seed: int = 0) -> pd.DataFrame:
    """Prices whose daily volatility is multiplied by ``factor`` from row ``jump_at`` on."""
    frame = make_prices(n, seed=seed, vol=0.01)
    rng = np.random.default_rng(seed + 1)
    vol = np.where(np.arange(n) >= jump_at, 0.01 * factor, 0.01)
    close = 100 * np.exp(np.cumsum(rng.standard_normal(n) * vol))
    open_ = np.r_[100, close[:-1]]
    return frame.assign(Open=open_, Close=close, High=np.maximum(open_, close) * (1 + vol / 2),
                        Low=np.minimum(open_, close) * (1 - vol / 2))


@pytest.fixture(scope="module")
def baseline():
    """A close-to-close EWMA band, calibrated on calm rows 300-599, horizon 3."""
    frame = _regime_prices(1400, jump_at=900, factor=3.0)
    return frame, BASELINES["ewma"].fitted(frame, 300, np.arange(300, 597), horizon=3)


@pytest.mark.parametrize("target", ["coverage", "score"])
def test_rows_after_the_origin_change_nothing(baseline, target):
    frame, model = baseline
    origins = np.arange(700, 1000)
    tracking = Tracking(target=target)
    before = adapted_forecast(model, frame, origins, tracking)
    for cut in (850, 999):
        changed = frame.copy()
        cols = ["Open", "High", "Low", "Close"]
        changed.loc[cut + 1:, cols] = changed.loc[cut + 1:, cols].to_numpy() * 1.7
        after = adapted_forecast(model, changed, origins[origins <= cut], tracking)
        np.testing.assert_array_equal(after.forecast.quantiles,
                                      before.forecast.quantiles[origins <= cut])
        np.testing.assert_array_equal(after.tracked_z, before.tracked_z[origins <= cut])
    # One origin at a time (as a client calls the service, with rows up to that day only)
    # gives what the batch gave.
    for origin in (700, 905, 999):
        alone = adapted_forecast(model, frame.iloc[:origin + 1], np.array([origin]), tracking)
        np.testing.assert_allclose(alone.forecast.quantiles[0],
                                   before.forecast.quantiles[origin - 700], rtol=1e-12)


def test_switched_off_it_is_the_static_calibration(baseline):
    frame, model = baseline
    origins = np.arange(700, 800)
    static = model.forecast_at(frame, origins)
    for off in (Tracking(window=0), Tracking(step=0.0)):
        adapted = adapted_forecast(model, frame, origins, off)
        np.testing.assert_array_equal(adapted.forecast.quantiles, static.quantiles)
        assert (adapted.width_ratio(0.95) == 1).all()
    assert Tracking.from_config(IntervalConfig(adapt_window=0)).enabled is False
    assert Tracking.from_config(IntervalConfig(adapt_target="score")).target == "score"
    with pytest.raises(ValueError, match="target"):
        Tracking(target="width")


def test_aiming_at_the_score_keeps_a_right_static_bound_and_follows_a_wrong_one():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((1500, 1))  # the static quantiles Z0 are exactly right
    scores[900:, 0] *= 3.0  # until the volatility triples at 900
    kinds = {t: track_quantiles(Z0, scores, np.arange(1500), QUANTILES, Tracking(target=t))
             for t in ("coverage", "score")}
    calm, after = np.arange(300, 900), np.arange(1100, 1500)
    # While the static calibration holds, the tracked bound wanders with the count of misses;
    # aimed at the score, the bound stays near the static one.
    wander = {t: np.abs(q[calm, 0, -1] - Z0[0, -1]).mean() for t, q in kinds.items()}
    assert wander["score"] < 0.5 * wander["coverage"]
    # Once it is wrong, the tracked bound's loss is the lower and the bound follows it.
    static_width = Z0[0, -1] - Z0[0, 0]
    widths = {t: (q[after, 0, -1] - q[after, 0, 0]).mean() for t, q in kinds.items()}
    assert widths["coverage"] > 2.0 * static_width
    assert widths["score"] > 0.9 * widths["coverage"]
    covered = (scores[after, 0] >= kinds["score"][after, 0, 0]) & (
        scores[after, 0] <= kinds["score"][after, 0, -1])
    assert covered.mean() > 0.9


def test_the_loss_of_each_score_counts_in_price_units():
    # Misses below the static lower bound on days whose unit is large make the tracked bound
    # the better one; the same misses on days of a small unit do not.
    rng = np.random.default_rng(4)
    scores = rng.standard_normal((600, 1))
    misses = np.arange(300, 600, 10)
    scores[misses, 0] = -4.0
    unit = np.ones((600, 1))
    big, small = unit.copy(), unit.copy()
    big[misses] = 100.0
    small[misses] = 0.01
    tracking = Tracking(window=250, target="score")
    at = np.array([599])
    lower = {name: track_quantiles(Z0, scores, at, QUANTILES, tracking, u)[0, 0, 0]
             for name, u in (("big", big), ("small", small))}
    tracked = track_quantiles(Z0, scores, at, QUANTILES, Tracking(window=250))[0, 0, 0]
    assert lower["big"] == pytest.approx(tracked, rel=0.05)
    assert lower["small"] == pytest.approx(Z0[0, 0], rel=0.05)


def test_a_run_of_misses_widens_the_band_and_calm_narrows_it_back():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((900, 1))
    scores[400:440, 0] *= 4.0  # forty sessions of misses, then calm again
    q = track_quantiles(Z0, scores, np.arange(900), QUANTILES, Tracking(window=250, step=0.1))
    width = q[:, 0, -1] - q[:, 0, 0]
    calm, storm, after = width[380:400].mean(), width[441], width[700:].mean()
    assert storm > 1.5 * calm
    assert after < 1.15 * calm and after < storm / 1.4
    # The median is not tracked, and the levels stay ordered.
    assert (q[:, 0, 2] == 0).all() and (np.diff(q, axis=2) >= 0).all()


def test_each_step_reads_only_scores_realised_by_the_origin():
    rng = np.random.default_rng(2)
    scores = rng.standard_normal((600, 3))
    z0 = np.repeat(Z0, 3, axis=0) * np.sqrt([[1], [2], [3]])
    tracking = Tracking(window=100, step=0.1)
    q = track_quantiles(z0, scores, np.arange(600), QUANTILES, tracking)
    planted = scores.copy()
    planted[400] = 50.0  # origin 400's outcome at step k is realised at position 400 + k
    p = track_quantiles(z0, planted, np.arange(600), QUANTILES, tracking)
    for k in range(3):
        np.testing.assert_array_equal(p[:401 + k, k], q[:401 + k, k])
        assert p[401 + k, k, -1] > q[401 + k, k, -1]


def test_it_settles_where_misses_are_as_frequent_as_promised():
    # Static quantiles half as wide as the truth: tracking restores the promised coverage.
    rng = np.random.default_rng(1)
    scores = 2.0 * rng.standard_t(5, size=(3000, 1))
    q = track_quantiles(Z0, scores, np.arange(3000), QUANTILES, Tracking(window=250, step=0.1))
    later = np.arange(500, 3000)
    for lo, hi, nominal in ((0, 4, 0.95), (1, 3, 0.8)):
        covered = (scores[later, 0] >= q[later, 0, lo]) & (scores[later, 0] <= q[later, 0, hi])
        assert covered.mean() == pytest.approx(nominal, abs=0.02)
        static = (scores[later, 0] >= Z0[0, lo]) & (scores[later, 0] <= Z0[0, hi])
        assert static.mean() < nominal - 0.1


def test_a_tripling_of_volatility_is_covered_again_within_weeks(baseline):
    frame, model = baseline
    origins = np.arange(900, 1390)
    adapted = adapted_forecast(model, frame, origins, Tracking())
    static = model.forecast_at(frame, origins)
    close = frame["Close"].to_numpy()
    actual = close[origins + 1]

    def covered(fc, days):
        fc = getattr(fc, "forecast", fc)
        lo, hi = fc.interval(0.95)
        return np.mean((actual[days] >= lo[days, 0]) & (actual[days] <= hi[days, 0]))

    first_weeks, later = np.arange(0, 20), np.arange(60, len(origins) - 1)
    # The EWMA catches up with the new level by itself; the adaptation removes what is left
    # of the calm span's calibration (here: tails set on Gaussian-looking calm returns).
    assert covered(adapted, later) >= covered(static, later) - 0.01
    assert covered(adapted, later) > 0.92
    assert adapted.width_ratio(0.95)[first_weeks].max() > 1.0
    assert (adapted.realised[:, 0] == 250).all() and (adapted.realised[:, 2] == 250).all()


def test_the_test_span_scores_the_bands_as_served():
    from helpers import TINY, predictable_prices

    from stockcast.config import build_config
    from stockcast.evaluation.scorecard import evaluate_model
    from stockcast.modeling.recipe import fit_and_calibrate

    cfg = build_config(TINY)
    fit = fit_and_calibrate(predictable_prices(700), cfg.window, cfg.model, cfg.train)
    static = evaluate_model(fit, "T", tracking=Tracking(window=0)).metrics
    # Switched off, the served bands are the static ones the headline scores.
    for key in ("coverage_80", "coverage_95", "interval_score_95"):
        assert static[f"adapted_{key}"] == pytest.approx(static[f"test_{key}"], rel=1e-12)
    evaluation = evaluate_model(fit, "T", tracking=Tracking())
    adapted, test = evaluation.metrics, fit.data.test
    # What is served (the LSTM or the volatility model chosen), adapting day by day.
    expected = adapted_forecast(evaluation.evaluated, fit.data.frame, test.origins, Tracking())
    lo, hi = expected.forecast.interval(0.95)
    actual = fit.data.actual_prices(test)
    assert adapted["adapted_coverage_95"] == pytest.approx(
        np.mean((actual >= lo) & (actual <= hi)), rel=1e-12)
    assert adapted["adapted_interval_score_95"] != static["adapted_interval_score_95"]
