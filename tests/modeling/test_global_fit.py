"""One network for many series: each series scaled on its own training rows, no window after
the earliest validation end in the shared training, per-ticker calibration."""

import numpy as np
import pytest
import torch
from helpers import TINY, make_prices

from stockcast.config import build_config
from stockcast.modeling import global_fit
from stockcast.modeling.windows import prepare_windows

CFG = build_config(TINY)


def _frames():
    # Histories of different lengths ending two weeks apart, as a night's downloads do.
    cheap = make_prices(300, seed=1, price=5.0, start="2015-07-27")
    dear = make_prices(340, seed=2, price=3000.0, start="2015-06-15")
    return {"CHEAP": cheap, "DEAR": dear}


def test_each_series_is_scaled_on_its_own_training_rows_and_shares_one_network(monkeypatch):
    from stockcast.modeling import recipe

    seen = {}
    real = recipe.train_model

    def spy(train, val, model, cfg, on_epoch=None, init=None):  # the recipe's training step
        seen.setdefault("train", train)
        seen.setdefault("val", val)
        return real(train, val, model, cfg, on_epoch, init)

    monkeypatch.setattr(recipe, "train_model", spy)
    frames = _frames()
    extra = {"EXTRA": make_prices(280, seed=3, price=50.0), "DEAR": frames["DEAR"]}
    fits = global_fit.fit_global(frames, extra, CFG.window, CFG.model, CFG.train)
    assert set(fits) == {"CHEAP", "DEAR"}
    assert fits["CHEAP"].result.model is fits["DEAR"].result.model
    assert fits["CHEAP"].trained_on == ("CHEAP", "DEAR", "EXTRA")
    for ticker, frame in frames.items():
        alone = prepare_windows(frame, CFG.window, CFG.model).transformer.scaler
        mine = fits[ticker].data.transformer.scaler
        np.testing.assert_allclose(mine.scale_, alone.scale_)
    # Each ticker keeps its own calibration, fitted on its own validation span.
    assert not np.allclose(fits["CHEAP"].forecaster.z, fits["DEAR"].forecaster.z)
    # Windows of every series, none with a target after the earliest validation end.
    datas = {t: fits[t].data for t in frames}
    cutoff = global_fit.validation_cutoff(datas, list(frames))
    own = {t: len(d.train) for t, d in datas.items()}
    assert len(seen["train"]) > sum(own.values())  # the extra series trained too
    for split in (seen["train"], seen["val"]):
        assert np.abs(split.x).max() < 50  # all in scaled units: no raw $3,000 prices
    dear = datas["DEAR"]
    dates = dear.frame["Date"].to_numpy()
    late = dates[dear.val.origins + 1] > np.datetime64(cutoff)
    assert late.any()  # DEAR's validation runs past CHEAP's: those windows stay out
    assert cutoff == datas["CHEAP"].frame["Date"].iloc[datas["CHEAP"].bounds.val_end - 1]
    extra_data = prepare_windows(extra["EXTRA"], CFG.window, CFG.model)
    expected_val = len(datas["CHEAP"].val) + int((~late).sum()) + len(extra_data.val)
    assert len(seen["val"]) == expected_val


def test_the_serving_refit_is_one_network_with_each_tickers_calibration():
    fits = global_fit.fit_global(_frames(), {}, CFG.window, CFG.model, CFG.train)
    served = global_fit.refit_global(fits, CFG.model, CFG.train)
    assert served["CHEAP"].forecaster.model is served["DEAR"].forecaster.model
    assert served["CHEAP"].forecaster.model is not fits["CHEAP"].result.model
    assert served["DEAR"].forecaster.transformer is fits["DEAR"].data.transformer
    assert served["DEAR"].serve_end == fits["DEAR"].data.frame["Date"].iloc[-1]


def test_no_ticker_left_is_a_clear_error():
    from stockcast.errors import TrainingError

    with pytest.raises(TrainingError, match="nothing to train a global model on"):
        global_fit.fit_global({}, {"X": make_prices(300)}, CFG.window, CFG.model, CFG.train)


def test_a_ticker_ending_early_is_trained_alone_and_cuts_no_other_series():
    frames = _frames()
    frames["GONE"] = make_prices(300, seed=4, price=20.0, start="2012-01-02")  # ends in 2013
    fits = global_fit.fit_global(frames, {}, CFG.window, CFG.model, CFG.train)
    together = global_fit.fit_global(_frames(), {}, CFG.window, CFG.model, CFG.train)
    # The others trained exactly as without it: the same windows, the same network.
    for t in ("CHEAP", "DEAR"):
        assert fits[t].trained_on == ("CHEAP", "DEAR") and not fits[t].note
        assert fits[t].trained_to == together[t].trained_to
        assert all(torch.equal(p, q) for p, q in zip(fits[t].result.model.parameters(),
                                                      together[t].result.model.parameters(),
                                                      strict=True))
    gone = fits["GONE"]
    assert gone.result.model is not fits["CHEAP"].result.model and gone.trained_on == ()
    assert gone.note == ("trained alone: its validation ends 2012-12-21, and the global model "
                         "would have cut the other series' windows from 518 to 0")
    assert gone.trained_to < fits["CHEAP"].trained_to
    # The serving refit keeps the two networks apart.
    served = global_fit.refit_global(fits, CFG.model, CFG.train)
    assert served["CHEAP"].forecaster.model is served["DEAR"].forecaster.model
    assert served["GONE"].forecaster.model is not served["CHEAP"].forecaster.model
