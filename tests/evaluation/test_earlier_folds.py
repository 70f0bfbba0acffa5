"""Walk-forward evidence ending tonight: consecutive out-of-sample folds, each fit cold, and the
serving choice that needs them before a baseline replaces the LSTM."""

import numpy as np
import pandas as pd
import pytest
from helpers import TINY, make_prices

from stockcast.config import build_config, merge
from stockcast.evaluation import earlier_folds
from stockcast.evaluation.earlier_folds import Recipe, WalkForward, confirm_baseline
from stockcast.evaluation.forecaster_choice import Choice
from stockcast.modeling.recipe import fit_and_calibrate
from stockcast.splits import min_rows, split_bounds, window_origins


def test_the_folds_are_consecutive_disjoint_and_end_with_tonights_test_span():
    cfg = build_config(TINY)
    walk = WalkForward(Recipe.of(cfg), folds=3)
    ends = walk.ends(1000)
    assert len(ends) == 2 and ends == sorted(ends)
    assert ends[-1] == split_bounds(1000, cfg.window).val_end  # tonight's test span starts there
    spans = []
    for n in (*ends, 1000):
        test = window_origins(n, cfg.window)["test"]
        spans.append((test[0] + 1, test[-1] + cfg.window.horizon))  # first, last target row
    for (_, last), (first, _) in zip(spans, spans[1:], strict=False):
        assert first == last + 1  # no day scored twice, none skipped
    # A history too short for an earlier fold gets fewer folds, never a broken one.
    shortest = min_rows(cfg.window)
    assert walk.ends(shortest + 1) == []
    assert all(end >= shortest for end in walk.ends(3 * shortest))
    assert WalkForward(Recipe.of(cfg), folds=1).ends(1000) == []


def test_a_reseed_is_the_same_recipe_other_settings_are_not():
    cfg = build_config(TINY)
    same = build_config(merge(TINY, {"train": {"seed": 7, "threads": 2, "device": "auto"}}))
    other = build_config(merge(TINY, {"model": {"hidden_size": 16}}))
    assert Recipe.of(cfg).differences(Recipe.of(same)) == []
    assert Recipe.of(other).differences(Recipe.of(cfg)) == ["model.hidden_size 8 -> 16"]


def test_walk_forward_is_off_for_one_fold_and_for_a_global_model():
    assert WalkForward.of(build_config(merge(TINY, {"promotion": {"walk_forward_folds": 1}}))) is None
    assert WalkForward.of(build_config(merge(TINY, {"model": {"scope": "global"}}))) is None
    assert WalkForward.of(build_config(TINY)).folds == 3


@pytest.fixture(scope="module")
def tonight():
    cfg = build_config(TINY)
    frame = make_prices(700, seed=3)
    return cfg, fit_and_calibrate(frame, cfg.window, cfg.model, cfg.train)


def _planted(monkeypatch, ratios):
    """Each earlier fold's baseline loss is ``ratio`` x the LSTM's; the fits are recorded."""
    ends, queue = [], list(ratios)

    def fit(self, frame, end, workers=1):
        ends.append(end)
        return end

    def losses(end, kind):
        lstm = np.random.default_rng(end).gamma(2.0, 0.01, (150, 1))
        return lstm * queue.pop(0), lstm, pd.Series(pd.bdate_range("2010-01-01", periods=150))

    monkeypatch.setattr(Recipe, "fit", fit)
    monkeypatch.setattr(earlier_folds, "baseline_against_lstm", losses)
    monkeypatch.setattr(earlier_folds.FoldFit, "of", classmethod(lambda cls, fit: fit))
    return ends


def _tonight_span(ratio):
    lstm = np.random.default_rng(99).gamma(2.0, 0.01, (150, 1))
    return lstm * ratio, lstm, pd.Series(pd.bdate_range("2020-01-01", periods=150))


def test_a_baseline_better_on_tonights_span_alone_does_not_replace_the_lstm(monkeypatch, tonight):
    cfg, fit = tonight
    ends = _planted(monkeypatch, [1.04, 1.03])  # the baseline was worse on both earlier folds
    walk = WalkForward(Recipe.of(cfg), folds=3, seed_sd=0.012)
    single = Choice("garch", "garch", 0.001, "planted")
    choice = confirm_baseline(single, fit, _tonight_span(0.95), walk, 0.05)
    assert choice.is_lstm and choice.folds == 3 and choice.pvalue >= 0.05
    assert ends == walk.ends(len(fit.data.frame))  # each earlier fold fit once, oldest first
    assert "tonight's test span alone" in choice.reason and "+4.0 %" in choice.reason


def test_a_baseline_better_on_every_fold_is_served(monkeypatch, tonight):
    cfg, fit = tonight
    _planted(monkeypatch, [0.9, 0.92])
    walk = WalkForward(Recipe.of(cfg), folds=3, seed_sd=0.012)
    choice = confirm_baseline(Choice("garch", "garch", 0.001, "planted"), fit,
                              _tonight_span(0.9), walk, 0.05)
    assert not choice.is_lstm and choice.prefix == "garch" and choice.folds == 3
    assert choice.pvalue < 0.05 and "serving GARCH" in choice.reason


def test_the_evaluation_asks_the_folds_before_serving_a_baseline():
    """Real fits: tonight's network has bands four times too wide (a defect of one fit), so a
    volatility model wins tonight's span; the choice is made on three folds, the two earlier
    ones forecast by networks fit cold there."""
    from stockcast.evaluation.scorecard import evaluate_model

    cfg = build_config(TINY)
    fit = fit_and_calibrate(make_prices(900, seed=5), cfg.window, cfg.model, cfg.train)
    fit.forecaster.z = fit.forecaster.z * 4.0
    single = evaluate_model(fit, "T", cfg.promotion.alpha)
    pooled = evaluate_model(fit, "T", cfg.promotion.alpha, walk_forward=WalkForward.of(cfg))
    assert not single.choice.is_lstm and single.choice.folds == 1
    assert pooled.choice.folds == 3 and "3 walk-forward folds" in pooled.choice.reason
    served = pooled.evaluated is fit.forecaster
    assert served == pooled.choice.is_lstm


def test_folds_that_cannot_be_fit_leave_tonights_span_to_decide_but_a_stop_stops(
        monkeypatch, tonight):
    from stockcast.stopping import RunStopped

    cfg, fit = tonight
    walk = WalkForward(Recipe.of(cfg), folds=3, seed_sd=0.012)
    single = Choice("garch", "garch", 0.001, "planted")

    def broken(self, frame, end, workers=1):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(Recipe, "fit", broken)
    choice = confirm_baseline(single, fit, _tonight_span(0.9), walk, 0.05)
    assert choice.prefix == "garch" and choice.folds == 1
    assert "could not be fit, RuntimeError: out of memory" in choice.reason

    def stopped(self, frame, end, workers=1):
        raise RunStopped("fit: stopped by SIGTERM")

    monkeypatch.setattr(Recipe, "fit", stopped)
    with pytest.raises(RunStopped):
        confirm_baseline(single, fit, _tonight_span(0.9), walk, 0.05)


@pytest.fixture(scope="module")
def last_nights_folds(tonight):
    """Tonight's frame, its earlier fold ends, and the fold fits a night before made (one row
    less: each fold's validation end a day or less earlier)."""
    cfg, fit = tonight
    frame = fit.data.frame
    walk = WalkForward(Recipe.of(cfg), folds=3, reuse_sessions=21)
    fits = [earlier_folds.FoldFit.of(walk.recipe.fit(frame, end))
            for end in walk.ends(len(frame) - 1)]
    return frame, walk.ends(len(frame)), fits


def test_a_kept_fold_fit_is_rescored_not_fit_again(monkeypatch, tonight, last_nights_folds):
    from dataclasses import replace

    cfg, fit = tonight
    frame, ends, kept = last_nights_folds

    def no_fit(self, frame, end, workers=1):
        raise AssertionError("a fold was fit again")

    monkeypatch.setattr(Recipe, "fit", no_fit)
    walk = WalkForward(Recipe.of(cfg), folds=3, seed_sd=0.012, reuse_sessions=21,
                       kept=lambda recipe: kept)
    choice = confirm_baseline(Choice("garch", "garch", 0.001, "planted"), fit,
                              _tonight_span(0.95), walk, 0.05)
    assert choice.folds == 3 and choice.fold_fits == tuple(kept)
    assert "2 of 2 earlier fold fits kept from an earlier night" in choice.reason
    # Re-scoring a kept fit gives what its own fit scored on the same fold.
    model = earlier_folds.BY_PREFIX["garch"]
    fresh = earlier_folds.baseline_against_lstm(fit, model)
    rescored, used, reused = replace(walk, kept=None).fold(
        frame, len(frame), model, [earlier_folds.FoldFit.of(fit)])
    assert reused and used.forecaster is fit.forecaster
    for ours, theirs in zip(rescored[:2], fresh[:2], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert rescored[2].equals(fresh[2])


def test_a_kept_fit_is_used_only_out_of_sample_and_while_fresh(tonight, last_nights_folds):
    cfg, fit = tonight
    frame, ends, kept = last_nights_folds
    walk = WalkForward(Recipe.of(cfg), folds=3, reuse_sessions=21)
    assert [walk.reusable(kept, frame, end) for end in ends] == kept
    # A fit whose validation reached past this fold's would score days it saw: never used.
    later = earlier_folds.FoldFit(kept[0].forecaster, kept[1].val_end)
    assert walk.reusable([later], frame, ends[0]) is None
    # One older than reuse_sessions is fit again; a date this history lacks (revised data) too.
    row = split_bounds(ends[0], cfg.window).val_end - 1
    dates = pd.to_datetime(frame["Date"])
    stale = earlier_folds.FoldFit(kept[0].forecaster, dates.iloc[row - 22])
    assert walk.reusable([stale], frame, ends[0]) is None
    assert WalkForward(Recipe.of(cfg), reuse_sessions=22).reusable([stale], frame, ends[0])
    missing = earlier_folds.FoldFit(kept[0].forecaster, dates.iloc[row] - pd.Timedelta(hours=1))
    assert walk.reusable([missing], frame, ends[0]) is None
