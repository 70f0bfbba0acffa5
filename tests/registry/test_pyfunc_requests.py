"""The served model refuses what the pipeline refuses: the same schema, on the rows it is sent."""

import numpy as np
import pandas as pd
import pytest
from helpers import make_prices

from stockcast.config import ValidationConfig
from stockcast.modeling.volatility_forecasters import BASELINES
from stockcast.registry.pyfunc import RequestRefused, StockcastForecaster

FRAME = make_prices(900, vol=0.015, start="2019-01-02")


@pytest.fixture(scope="module", params=["rangevol", "ewma"])
def served(request):
    model = BASELINES[request.param].fitted(FRAME, 500, np.arange(500, 700), horizon=1)
    return StockcastForecaster(model, "T")


def _refusal(served, frame) -> str:
    with pytest.raises(RequestRefused) as info:
        served.predict(None, frame)
    return str(info.value.message)


def test_valid_rows_are_answered(served):
    out = served.predict(None, FRAME)
    assert out["lower_95"].iloc[0] < out["forecast"].iloc[0] < out["upper_95"].iloc[0]
    # A close-only request is enough for a close-only model, and judged on what it has.
    if served.forecaster.input_columns == ["Close"]:
        assert len(served.predict(None, FRAME[["Date", "Close"]])) == 1


def test_a_high_below_the_low_is_refused_naming_the_rule_and_the_row(served):
    bad = FRAME.copy()
    bad.loc[899, "High"] = bad.loc[899, "Low"] * 0.9
    message = _refusal(served, bad)
    assert message.startswith("prices refused by the pipeline's validation: High: High must be "
                              ">= max(Open, Close) at row(s) [899]")


def test_an_unadjusted_jump_a_flat_series_and_future_dates_are_refused(served):
    jump = FRAME.copy()
    jump.loc[850:, ["Open", "High", "Low", "Close"]] *= 1000
    assert "one-day move beyond x10" in _refusal(served, jump)
    assert "at row(s) [850]" in _refusal(served, jump)
    flat = FRAME.assign(Open=100.0, High=100.0, Low=100.0, Close=100.0)
    assert "a flat series has nothing to forecast" in _refusal(served, flat)
    future = FRAME.assign(Date=pd.bdate_range("2040-01-02", periods=len(FRAME)))
    assert "lie in the future" in _refusal(served, future)


def test_the_rules_are_the_ones_the_model_was_trained_under(served):
    jump = FRAME.copy()
    jump.loc[850:, ["Open", "High", "Low", "Close"]] *= 1000
    lenient = StockcastForecaster(served.forecaster, "T",
                                  validation=ValidationConfig(max_move_factor=None))
    assert len(lenient.predict(None, jump)) == 1
