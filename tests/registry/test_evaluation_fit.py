"""Promotion's evidence never shrinks: a champion of any age is re-scored on the candidate's
test span, out of sample for it, and its evaluation fit is verified before it is unpickled."""

import numpy as np
import pandas as pd
import pytest
from helpers import predictable_prices, quality, run_stages

from stockcast.config import PromotionConfig, build_config
from stockcast.errors import RegistryError
from stockcast.modeling.recipe import fit_and_calibrate
from stockcast.registry.evaluation_fit import (
    EvaluationFit,
    load_evaluation_fit,
    rescore,
    validation_end,
)
from stockcast.registry.promotion import RESCORED, compare
from stockcast.splits import window_origins


@pytest.fixture(scope="module")
def champion():
    cfg = build_config(quality(1))
    frame = predictable_prices(1150)
    fit = fit_and_calibrate(frame.iloc[:700], cfg.window, cfg.model, cfg.train)
    return cfg, frame, EvaluationFit(fit.forecaster, validation_end(fit))


def test_a_champion_400_nights_old_still_compares_on_recent_pairs(champion):
    cfg, frame, fit = champion
    promotion = PromotionConfig()
    for nights in (0, 1, 100, 250, 400, 450):
        tonight = frame.iloc[:700 + nights].reset_index(drop=True)
        origins = window_origins(len(tonight), cfg.window)["test"]
        theirs = rescore(fit, tonight, origins)
        assert (theirs["origin_date"] >= fit.val_end).all()  # out of sample for the champion
        assert theirs["date"].max() == tonight["Date"].iloc[-1]  # up to tonight
        decision = compare(theirs.assign(point=theirs["actual"]), theirs, promotion, "1",
                           RESCORED)
        assert decision.pairs == len(origins) >= promotion.min_pairs
        assert decision.span.endswith(str(tonight["Date"].iloc[-1].date()))


def test_rescoring_drops_origins_the_champion_saw(champion):
    cfg, frame, fit = champion
    part = frame.iloc[:700].reset_index(drop=True)
    every = np.arange(cfg.window.sequence_length, len(part) - 1)
    table = rescore(fit, part, every)
    first = pd.Timestamp(table["origin_date"].min())
    assert first == fit.val_end  # the validation span's last day is the first origin kept
    assert len(table) == int((part["Date"].iloc[every] >= fit.val_end).sum())


def test_the_evaluation_fit_is_logged_and_verified_before_unpickling(tmp_path, tracking_uri):
    from mlflow.tracking import MlflowClient

    overrides = {**quality(1), "tracking": {"model_key": "s3cret"}}
    out = run_stages(predictable_prices(), overrides, tracking_uri, tmp_path)
    store, run_id = out["store"], out["logged"].run_id
    loaded = load_evaluation_fit(store, run_id, "s3cret")
    assert loaded is not None and loaded.val_end == validation_end(out["fit"])
    with pytest.raises(RegistryError, match="not signed"):
        load_evaluation_fit(store, run_id, "another key")
    client = MlflowClient(tracking_uri)
    assert client.get_run(run_id).data.tags["fit.val_end"] == str(loaded.val_end.date())
    # An older version's run without one: promotion falls back to its logged table.
    client.delete_tag(run_id, "fit.val_end")
    assert load_evaluation_fit(store, run_id, None) is None


def test_a_planted_better_model_promotes_over_a_champion_with_bands_too_wide(champion):
    cfg, frame, fit = champion
    z = fit.forecaster.z
    wide = type(fit.forecaster)(fit.forecaster.model, fit.forecaster.transformer, z * 2.0)
    stale = EvaluationFit(wide, fit.val_end)
    tonight = frame.iloc[:900].reset_index(drop=True)
    origins = window_origins(len(tonight), cfg.window)["test"]
    decision = compare(rescore(fit, tonight, origins), rescore(stale, tonight, origins),
                       PromotionConfig(), "1", RESCORED)
    assert decision.promote and decision.pvalue < 0.05 and decision.seed_sd == 0.012


@pytest.mark.slow  # trains five small models: a model-behaviour test
def test_reseeded_reruns_do_not_promote_but_would_without_the_training_noise():
    from helpers import TINY, make_prices

    from stockcast.config import merge
    from stockcast.evaluation.scorecard import forecast_table, score_test_span

    frame = make_prices(1500, seed=3)  # a random walk: nothing for a seed to find

    def test_table(seed: int):
        cfg = build_config(merge(TINY, {"window": {"sequence_length": 20},
                                        "model": {"hidden_size": 8},
                                        "train": {"epochs": 8, "patience": 3, "seed": seed}}))
        fit = fit_and_calibrate(frame, cfg.window, cfg.model, cfg.train)
        span = score_test_span(fit)
        return forecast_table(fit.data.frame["Date"], fit.data.test.origins, span.forecast,
                              span.actual)

    champion_table = test_table(42)
    reruns = [test_table(seed) for seed in (1, 3, 4, 5)]
    default = [compare(t, champion_table, PromotionConfig(), "1", RESCORED) for t in reruns]
    assert not any(d.promote for d in default)
    # The DM test alone calls a reseed's tiny, consistent difference significant.
    plain = [compare(t, champion_table, PromotionConfig(seed_sd=0.0), "1", RESCORED)
             for t in reruns]
    assert any(d.promote for d in plain)


def test_with_no_champion_yet_the_next_fit_starts_from_the_latest_version(tmp_path, tracking_uri):
    from stockcast.config import merge
    from stockcast.registry.warm_start import champion_start

    # A sanity gate nothing passes: v1 is registered but refused, so there is no champion.
    overrides = merge(quality(1), {"promotion": {"coverage_tolerance": 1e-9}})
    out = run_stages(predictable_prices(), overrides, tracking_uri, tmp_path)
    assert not out["decision"].promote
    store, run_id = out["store"], out["logged"].run_id
    start = champion_start("stockcast-TEST", out["cfg"], store)
    assert start.source == f"v1 (run {run_id[:8]}; the latest version, no champion yet)"
    trained = out["fit"].forecaster.model.state_dict()
    assert all((v == trained[k]).all() for k, v in start.model.state_dict().items())
    assert champion_start("stockcast-OTHER", out["cfg"], store).source == (
        "scratch: no version yet")
    # The same settings are still required.
    wider = out["cfg"].model_copy(update={"model": out["cfg"].model.model_copy(
        update={"hidden_size": 24})})
    assert champion_start("stockcast-TEST", wider, store).source == (
        "scratch: v1's settings differ (model.hidden_size 16 -> 24; the latest version, no "
        "champion yet)")


def test_a_corrupt_evaluation_fit_without_a_key_still_lets_the_next_run_decide(tmp_path,
                                                                              tracking_uri):
    """No key, so nothing is verified: a champion whose evaluation fit no longer unpickles is
    compared on its logged forecasts, and the reason says why; the warm start trains cold."""
    from urllib.parse import urlparse

    from mlflow.tracking import MlflowClient

    first = run_stages(predictable_prices(), quality(1), tracking_uri, tmp_path)
    run = MlflowClient(tracking_uri).get_run(first["logged"].run_id)
    pkl = urlparse(run.info.artifact_uri).path + "/evaluation_fit/forecaster.pkl"
    with open(pkl, "wb") as f:
        f.write(b"\x80\x04 not a pickle any more")
    with pytest.raises(RegistryError, match=r"evaluation_fit/forecaster.pkl of run .* cannot be"):
        load_evaluation_fit(first["store"], run.info.run_id, None)
    second = run_stages(predictable_prices(), quality(1), tracking_uri, tmp_path)
    decision = second["decision"]
    assert second["version"] == "2" and decision.pvalue is not None
    assert "its evaluation fit was not used" in decision.evidence
    assert "cannot be loaded" in decision.reason


def test_the_next_night_rescores_the_fold_fits_a_night_kept(tmp_path, tracking_uri, monkeypatch):
    """Each night the network's bands are four times too wide, so a volatility model wins
    tonight's span and the serving choice asks the walk-forward folds. The first night fits
    them and keeps them with its run (signed); the next, with one more day of prices,
    re-scores them instead of fitting again. Another key, or other settings, fit again."""
    from mlflow.tracking import MlflowClient

    from stockcast.evaluation.earlier_folds import Recipe
    from stockcast.registry.evaluation_fit import kept_fold_fits

    fits, real = [], Recipe.fit

    def counted(self, frame, end, workers=1):
        fits.append(end)
        return real(self, frame, end, workers)

    def widen(fit):
        fit.forecaster.z = fit.forecaster.z * 4.0

    monkeypatch.setattr(Recipe, "fit", counted)
    overrides = {**quality(1), "tracking": {"model_key": "s3cret"}}
    prices = predictable_prices(900, seed=5)
    first = run_stages(prices.iloc[:-1], overrides, tracking_uri, tmp_path, after_fit=widen)
    assert first["evaluation"].choice.folds == 3 and len(fits) == 2
    tags = MlflowClient(tracking_uri).get_run(first["logged"].run_id).data.tags
    assert len(tags["fit.fold_val_ends"].split(",")) == 2
    store, recipe = first["store"], Recipe.of(first["cfg"])
    kept = kept_fold_fits(store, "stockcast-TEST", "s3cret", recipe)
    assert [k.val_end for k in kept] == [k.val_end for k in first["evaluation"].choice.fold_fits]
    with pytest.raises(RegistryError, match="not signed"):
        kept_fold_fits(store, "stockcast-TEST", "another key", recipe)
    other = Recipe.of(build_config({**quality(1), "model": {"hidden_size": 8}}))
    assert kept_fold_fits(store, "stockcast-TEST", "s3cret", other) == ()

    second = run_stages(prices, overrides, tracking_uri, tmp_path, after_fit=widen)
    choice = second["evaluation"].choice
    assert len(fits) == 2 and choice.folds == 3  # nothing fit again
    assert "2 of 2 earlier fold fits kept from an earlier night" in choice.reason
