"""Promotion: the pure rule on out-of-sample forecast tables, and its action on a real store."""

import re

import numpy as np
import pandas as pd
import pytest
from helpers import predictable_prices, quality, run_stages
from mlflow.tracking import MlflowClient
from scipy.stats import norm

from stockcast.config import PromotionConfig, merge
from stockcast.registry.promotion import decide_promotion
from stockcast.registry.versions import champion_version, list_versions, model_name

CFG = PromotionConfig()
LEVELS = (0.025, 0.1, 0.5, 0.9, 0.975)
GOOD = {"test_rmse": 1.0, "test_coverage_95": 0.95, "dm_pvalue_naive": 0.4}


def table(sigma, start=0, n=300, horizon=1, seed=0, jitter=0.0):
    """Out-of-sample forecasts of a random walk with 1 % daily vol: Gaussian quantiles of width
    ``sigma`` around persistence, for target days start .. start+n (same prices every call)."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 2000)))
    dates = pd.bdate_range("2020-01-01", periods=2000)
    noise = np.random.default_rng(seed)
    rows = []
    for t in range(start, start + n):
        for k in range(1, horizon + 1):
            last = close[t - k]
            row = {"date": dates[t], "step": k, "origin_date": dates[t - k], "point": last,
                   "actual": close[t]}
            for q in LEVELS:
                z = norm.ppf(q) * sigma * np.sqrt(k) * (1 + jitter * noise.normal())
                row[f"q{q:g}"] = last * np.exp(z)
            rows.append(row)
    return pd.DataFrame(rows)


def test_first_model_passing_the_gate_is_promoted():
    d = decide_promotion(table(0.01, 100), GOOD, None, None, CFG)
    assert d.promote and "no champion" in d.reason


def test_sanity_gate_refuses_bad_coverage_and_a_point_forecast_worse_than_persistence():
    d = decide_promotion(table(0.01, 100), {**GOOD, "test_coverage_95": 0.80}, None, None, CFG)
    assert not d.promote and "coverage" in d.reason
    d = decide_promotion(table(0.01, 100), {**GOOD, "dm_pvalue_naive": 0.999}, None, None, CFG)
    assert not d.promote and "worse than persistence" in d.reason
    assert not decide_promotion(table(0.01, 100), {**GOOD, "test_rmse": float("nan")}, None,
                                None, CFG).promote


def test_a_noise_level_candidate_is_refused():
    champion = table(0.01, 100, seed=1, jitter=0.002)
    candidate = table(0.01, 110, seed=2, jitter=0.002)  # a reseed: the same model, give or take
    d = decide_promotion(candidate, GOOD, champion, "3", CFG)
    assert not d.promote and d.pvalue >= CFG.alpha and "not significantly better" in d.reason
    assert d.pairs == 290 and d.champion_version == "3"


def test_a_difference_within_training_noise_is_not_evidence():
    # A rerun whose bands are 1.5 % narrower on every day: a small, consistent difference the
    # plain DM test calls significant; it is about what reseeding alone does (seed_sd 1.2 %).
    champion = table(0.012, 100, n=300)
    candidate = champion.copy()
    for q in ("q0.025", "q0.975"):
        candidate[q] = candidate["point"] * (champion[q] / champion["point"]) ** 0.985
    plain = decide_promotion(candidate, GOOD, champion, "3", PromotionConfig(seed_sd=0.0))
    d = decide_promotion(candidate, GOOD, champion, "3", CFG)
    assert plain.promote and plain.pvalue < CFG.alpha
    assert not d.promote and d.pvalue > 0.1 and d.seed_sd == 0.012
    assert "training noise 0.012 per fit" in d.reason


def test_a_clearly_better_candidate_is_promoted_with_its_evidence():
    champion = table(0.03, 100)  # intervals three times too wide
    candidate = table(0.01, 110)
    d = decide_promotion(candidate, GOOD, champion, "3", CFG)
    assert d.promote and d.pvalue < 0.001 and d.candidate_loss < d.champion_loss
    assert "interval_score" in d.reason and d.test.startswith("Diebold-Mariano")
    # ... unless it must also beat the champion by a margin it does not reach.
    assert not decide_promotion(candidate, GOOD, champion, "3", PromotionConfig(margin=0.9)).promote


def test_the_champion_is_compared_only_where_both_forecast_out_of_sample():
    # The candidate's test span ends before the champion's begins: those days lay in the
    # champion's fit span, so there is nothing to compare on, and nothing is promoted.
    champion = table(0.03, 500)
    candidate = table(0.01, 100, n=300)
    d = decide_promotion(candidate, GOOD, champion, "3", CFG)
    assert not d.promote and d.pairs == 0 and "only 0" in d.reason
    few = decide_promotion(table(0.01, 480, n=40), GOOD, champion, "3", CFG)
    assert few.pairs == 20 and not few.promote  # fewer than min_pairs


def test_horizons_compare_on_common_steps_and_a_shorter_one_needs_consent():
    champion = table(0.03, 100, horizon=3)
    candidate = table(0.01, 110, horizon=1)
    d = decide_promotion(candidate, GOOD, champion, "3", CFG)
    assert not d.promote and "allow_horizon_change" in d.reason
    allowed = decide_promotion(candidate, GOOD, champion, "3",
                               PromotionConfig(allow_horizon_change=True))
    assert allowed.promote and allowed.pairs == 290  # step 1 only
    longer = decide_promotion(table(0.01, 110, horizon=3), GOOD, table(0.03, 100), "3", CFG)
    assert longer.promote and longer.pairs == 290


@pytest.mark.parametrize("loss", ["interval_score", "pinball", "squared_error"])
def test_every_configured_loss_works(loss):
    d = decide_promotion(table(0.01, 110), GOOD, table(0.03, 100), "1", PromotionConfig(loss=loss))
    assert d.loss == loss and d.pairs == 290
    assert d.promote == (loss != "squared_error")  # equal point forecasts: no evidence


# ---------------------------------------------------------------- against a real store


def versions(uri, name):
    return {str(mv.version): mv for mv in MlflowClient(uri).search_model_versions(f"name='{name}'")}


def test_promotion_lifecycle_on_a_real_sqlite_store(tmp_path, tracking_uri):
    from stockcast.registry.manual_promotion import set_champion

    frame = predictable_prices()
    name = model_name("stockcast", "TEST")
    client = MlflowClient(tracking_uri)
    # Cold fits both times (warm_start_epochs: 0): the rerun is the same run, not a night that
    # continues the champion's training.
    cold = merge(quality(2), {"train": {"warm_start_epochs": 0}})
    first = run_stages(frame, cold, tracking_uri, tmp_path)
    assert first["decision"].promote and champion_version(client, name) == "1"
    v1 = versions(tracking_uri, name)["1"]  # no test, but the version's own loss is recorded
    assert v1.description.startswith("CHAMPION: first version · promoted: no champion yet")
    assert float(v1.tags["promotion.candidate_loss"]) > 0
    assert int(v1.tags["promotion.pairs"]) == len(first["evaluation"].table)
    assert v1.tags["promotion.pvalue"] == "n/a" and "no champion" in v1.tags["promotion.test"]

    # The same run again: registered, compared on the common out-of-sample pairs, and refused
    # for want of evidence; the test and its numbers are recorded.
    again = run_stages(frame, cold, tracking_uri, tmp_path)
    assert again["version"] == "2" and not again["decision"].promote
    assert champion_version(client, name) == "1"
    assert champion_version(client, name, "challenger") == "2"
    mv = versions(tracking_uri, name)["2"]
    assert mv.tags["promotion.promote"] == "False"
    assert int(mv.tags["promotion.pairs"]) == len(first["evaluation"].table)
    assert float(mv.tags["promotion.pvalue"]) >= 0.05
    assert mv.tags["promotion.loss"] == "interval_score"
    assert mv.tags["promotion.folds"] == "1"  # the same settings: tonight's span decides
    assert re.match(r"v1 stays champion: [+-]\d+\.\d %, p [01]\.\d{3} · refused: ", mv.description)
    assert "p =" in mv.description and mv.description.endswith("(decided by pipeline)")

    store = first["store"]
    set_champion(name, "2", store)  # by hand
    assert champion_version(client, name) == "2"
    assert versions(tracking_uri, name)["2"].tags["promotion.decided_by"] == "manual"
    rows = list_versions("stockcast", "TEST", store)
    assert [r["version"] for r in rows] == [1, 2] and "champion" in rows[1]["aliases"]


def test_model_names_are_predictable_and_one_to_one():
    from stockcast.errors import ConfigError

    assert model_name("stockcast", "goog") == "stockcast-GOOG"
    assert model_name("stockcast", "BRK-B") == "stockcast-BRK-B"
    symbols = ["^GSPC", "GSPC", "BRK-B", "BRK.B", "BRKB", "EURUSD=X", "EURUSDX"]
    assert len({model_name("stockcast", t) for t in symbols}) == len(symbols)  # one-to-one
    for bad in ("_GSPC", "ÄPFEL", "../x", "A" * 21):
        with pytest.raises(ConfigError, match="not a ticker symbol"):
            model_name("stockcast", bad)


def test_listing_an_empty_store(tracking_uri):
    from stockcast.registry.store import MlflowStore

    assert list_versions("stockcast", None, MlflowStore(tracking_uri)) == []


def test_the_headline_says_the_decision_in_the_first_40_characters():
    from stockcast.registry.decision_record import Decision, headline

    promoted = Decision(True, "promoted: ...", candidate_loss=0.94, champion_loss=1.0,
                        pvalue=0.004, champion_version="3")
    kept = Decision(False, "refused: not significantly better", candidate_loss=0.99,
                    champion_loss=1.0, pvalue=0.31, champion_version="3")
    gate = Decision(False, "refused by the sanity gate: ...")
    assert headline(promoted) == "CHAMPION: -6.0 % vs v3, p 0.004"
    assert headline(kept) == "v3 stays champion: -1.0 %, p 0.310"
    assert headline(gate) == "no champion: sanity gate refused"
    assert headline(Decision(True, "promoted by hand", champion_version="2"), "manual") == (
        "CHAMPION by hand (was v2)")
    assert all(len(headline(d)) <= 40 for d in (promoted, kept, gate))
    # A volatility model served: named first, the decision after it.
    assert headline(promoted, serves="har") == "CHAMPION (serves HAR): -6.0 % vs v3, p 0.004"
    assert headline(kept, serves="garch_t").startswith("(serves GARCH-t) v3 stays champion: ")
    assert headline(promoted, serves="lstm") == headline(promoted)


def test_run_names_put_what_differs_first():
    import datetime as dt

    from stockcast.config import PipelineConfig
    from stockcast.registry.tracking import run_name

    now = dt.datetime(2026, 11, 22, 7, 30, 12)
    assert run_name("GOOG", PipelineConfig(), now) == "GOOG defaults · 2026-11-22 07:30:12"
    cfg = PipelineConfig.model_validate({"train": {"epochs": 7}})
    assert run_name("GOOG", cfg, now) == "GOOG epochs=7 · 2026-11-22 07:30:12"
    # A nightly run that continued from a version's weights says so before the time.
    warm = run_name("GOOG", PipelineConfig(), now, "champion v1 (run 1a2b3c4d)")
    assert warm == "GOOG warm from v1 · defaults · 2026-11-22 07:30:12"
    assert run_name("GOOG", PipelineConfig(), now, "v3 (run 1a2b3c4d; the latest version, no "
                    "champion yet)").startswith("GOOG warm from v3 · defaults")
    assert run_name("GOOG", PipelineConfig(), now, "scratch: no version yet").startswith(
        "GOOG defaults")


def _folds(candidate_sigma, champion_sigma):
    """Three consecutive 300-day folds, each forecast by its own (planted) fits."""
    return [(table(c, 100 + 300 * i), table(k, 100 + 300 * i))
            for i, (c, k) in enumerate(zip(candidate_sigma, champion_sigma, strict=True))]


def test_a_consistent_edge_is_promoted_on_the_folds_where_one_span_lacks_the_power():
    from stockcast.registry.promotion import compare

    folds = _folds((0.01, 0.01, 0.01), (0.0115, 0.0115, 0.0115))  # ~4 % better on each
    alone = compare(*folds[-1], CFG, "1")
    pooled = compare(*folds[-1], CFG, "1", earlier=folds[:-1])
    assert not alone.promote and alone.pvalue > CFG.alpha  # two fits' training noise
    assert pooled.promote and pooled.folds == 3 and pooled.pairs == 900
    assert "3 walk-forward folds (per fold -" in pooled.reason
    assert pooled.span == f"{folds[0][0]['date'].min().date()}..{folds[-1][0]['date'].max().date()}"


def test_an_edge_on_tonights_span_alone_is_not_promoted_on_the_folds():
    from stockcast.registry.promotion import compare

    folds = _folds((0.013, 0.013, 0.01), (0.01, 0.01, 0.013))  # better tonight, worse before
    assert compare(*folds[-1], CFG, "1").promote
    pooled = compare(*folds[-1], CFG, "1", earlier=folds[:-1])
    assert not pooled.promote and pooled.folds == 3 and "not significantly better" in pooled.reason


def test_a_champion_of_other_settings_is_judged_on_walk_forward_folds(tmp_path, tracking_uri):
    """A new configuration against the champion's: both are fit cold on each earlier fold of
    the same history, and the decision pools them with tonight's span."""
    frame = predictable_prices()
    run_stages(frame, quality(2), tracking_uri, tmp_path)
    better = run_stages(frame, quality(20), tracking_uri, tmp_path)
    decision = better["decision"]
    assert "both configurations fit cold (train.epochs 2 -> 20)" in decision.evidence
    assert decision.folds == 3 and decision.promote and decision.pvalue < CFG.alpha
    assert decision.pairs > len(better["evaluation"].table)  # more days than tonight's span
    tags = versions(tracking_uri, model_name("stockcast", "TEST"))["2"].tags
    assert tags["promotion.folds"] == "3" and "walk-forward" in tags["promotion.evidence"]



ROLLBACK = """
import sys
from mlflow.tracking import MlflowClient
from stockcast.registry.manual_promotion import set_champion
from stockcast.registry.store import MlflowStore
from stockcast.registry.versions import champion_version
store = MlflowStore(sys.argv[1])
client = MlflowClient(sys.argv[1])
client.create_registered_model("stockcast-T")
run = client.create_run(store.experiment_id())
for _ in range(2):
    client.create_model_version("stockcast-T", f"runs:/{run.info.run_id}/model",
                                run_id=run.info.run_id)
set_champion("stockcast-T", "2", store)
set_champion("stockcast-T", "1", store)  # the rollback
print(champion_version(client, "stockcast-T"),
      [m for m in ("torch", "prefect", "matplotlib") if m in sys.modules])
"""


def test_a_rollback_by_hand_loads_no_training_stack(tracking_uri):
    # `stockcast promote` is an operator's rollback: MLflow and the registry's modules only,
    # not torch, Prefect or matplotlib (seconds of imports before the alias moves).
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", ROLLBACK, tracking_uri], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "1 []", out.stdout + out.stderr


def test_a_volatility_model_promoted_by_hand_is_still_named_first(tracking_uri):
    # What the Models page shows first: the served forecaster, also after a rollback by hand.
    from stockcast.registry.manual_promotion import set_champion
    from stockcast.registry.store import MlflowStore

    store = MlflowStore(tracking_uri)
    client = MlflowClient(tracking_uri)
    client.create_registered_model("stockcast-T")
    run = client.create_run(store.experiment_id())
    for tags in ({"forecaster": "lstm"}, {"forecaster": "har",
                                          "forecaster.reason": "HAR beat the LSTM"}):
        client.create_model_version("stockcast-T", f"runs:/{run.info.run_id}/model",
                                    run_id=run.info.run_id, tags=tags)
    set_champion("stockcast-T", "2", store)
    set_champion("stockcast-T", "1", store)
    har, lstm = (client.get_model_version("stockcast-T", v).description for v in ("2", "1"))
    assert har.startswith("CHAMPION (serves HAR) by hand") and "serves: HAR beat" in har, har
    assert lstm.startswith("CHAMPION by hand (was v2)") and "serves" not in lstm, lstm
