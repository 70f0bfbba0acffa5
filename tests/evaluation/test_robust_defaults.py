"""The defaults on data they were not tuned for: a long history that rises a hundredfold,
with an unadjusted split in the raw closes, in a CSV with an odd column order."""

import numpy as np
import pandas as pd
import pytest
from helpers import TINY

from stockcast.config import build_config, merge
from stockcast.data.files import read_price_file
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.evaluation.point_metrics import score_forecasts
from stockcast.modeling.recipe import fit_and_calibrate


def hundredfold_csv(path, n=7500, seed=7):
    rng = np.random.default_rng(seed)
    adj = 5.0 * np.exp(np.cumsum(rng.normal(np.log(100) / n, 0.005, n)))  # ~100x over 30 years
    split = np.where(np.arange(n) < n // 2, 4.0, 1.0)  # a 4:1 split halfway, unadjusted
    close = adj * split
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0, 0.003, n))
    open_[n // 2] = close[n // 2] * 1.001  # the split day opens at the new price
    high = np.maximum(open_, close) * 1.004
    low = np.minimum(open_, close) * 0.996
    frame = pd.DataFrame({
        "Volume": rng.integers(1e5, 1e6, n), "Adj Close": adj, "Low": low,
        "Date": pd.bdate_range("1995-01-02", periods=n).strftime("%m/%d/%Y"),
        "Close": close, "High": high, "Open": open_,
    })
    frame.to_csv(path, index=False)
    return adj


@pytest.mark.slow  # trains an LSTM on 7,500 rows: a model-quality test
@pytest.mark.parametrize("target", ["log_return", "price"])
def test_defaults_hold_up_on_a_hundredfold_rise_with_a_split(tmp_path, target):
    adj = hundredfold_csv(tmp_path / "long.csv")
    cfg = build_config(merge(TINY, {"model": {"target": target},
                                    "train": {"epochs": 5}}))
    checked = validate_prices(PriceData("LONG", read_price_file(tmp_path / "long.csv"), "csv",
                                        str(tmp_path / "long.csv")), cfg.window, cfg.validation)
    frame, report = checked.frame, checked.report
    np.testing.assert_allclose(frame["Close"], adj)  # split-adjusted from Adj Close
    assert not any("one-day move" in w for w in report.warnings)
    fit = fit_and_calibrate(frame, cfg.window, cfg.model, cfg.train)
    data = fit.data
    # the test span lies well outside the training price range
    assert np.median(data.close[data.test.origins]) > data.close[: data.bounds.train_end].max()
    last = data.last_close(data.test)
    forecast = fit.forecaster.forecast_split(data.test, last)
    actual = data.actual_prices(data.test)
    skill = score_forecasts(forecast.point, actual, last)["skill_rmse"]
    lo, hi = forecast.interval(0.95)
    coverage = np.mean((actual >= lo) & (actual <= hi))
    if target == "log_return":
        # The default stays at persistence level even far outside the training price range,
        # and its intervals, calibrated on the validation span, still cover.
        assert skill > -0.05
        assert 0.9 <= coverage <= 0.99
    else:
        # The seed formulation extrapolates badly there: why it is not the default.
        assert skill < -0.05
