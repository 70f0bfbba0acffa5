import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import predictable_prices, quality, run_stages
from mlflow.tracking import MlflowClient

from stockcast.config import PromotionConfig
from stockcast.registry.promotion import decide_promotion, set_champion
from stockcast.registry.versions import champion_version, list_versions, model_name

GATE = PromotionConfig(min_skill=-0.05, margin=0.0)


# ---------------------------------------------------------------- the pure decision


def test_first_model_passing_the_gate_is_promoted():
    d = decide_promotion(1.0, 0.01, None, GATE)
    assert d.promote and "no champion" in d.reason


def test_sanity_gate_refuses_models_clearly_worse_than_persistence():
    d = decide_promotion(1.0, -0.2, None, GATE)
    assert not d.promote and "sanity gate" in d.reason
    assert not decide_promotion(0.5, -0.2, 1.0, GATE).promote  # even if it beats the champion


def test_must_beat_champion_by_the_margin():
    cfg = PromotionConfig(margin=0.05)
    assert not decide_promotion(0.96, 0.1, 1.0, cfg, "3").promote
    d = decide_promotion(0.94, 0.1, 1.0, cfg, "3")
    assert d.promote and "v3" in d.reason
    assert not decide_promotion(1.0, 0.1, 1.0, GATE).promote  # a tie keeps the champion


def test_non_finite_metrics_are_refused():
    assert not decide_promotion(float("nan"), 0.1, None, GATE).promote


# ---------------------------------------------------------------- against a real store


def versions(uri, name):
    return {str(mv.version): mv for mv in MlflowClient(uri).search_model_versions(f"name='{name}'")}


def test_promotion_lifecycle_on_a_real_sqlite_store(tmp_path, tracking_uri):
    frame = predictable_prices()
    name = model_name("stockcast", "TEST")
    client = MlflowClient(tracking_uri)

    first = run_stages(frame, quality(2), tracking_uri, tmp_path)
    assert first["decision"].promote
    assert champion_version(client, name) == first["version"] == "1"

    # A worse model (fewer epochs) is registered but refused; the reason is recorded.
    worse = run_stages(frame, quality(1), tracking_uri, tmp_path)
    assert worse["version"] == "2" and not worse["decision"].promote
    assert champion_version(client, name) == "1"
    assert champion_version(client, name, "challenger") == "2"
    tags = versions(tracking_uri, name)["2"].tags
    assert tags["promotion.promote"] == "False"
    assert "does not beat champion v1" in tags["promotion.reason"]
    # The champion was re-scored on the candidate's data: its RMSE equals the first run's.
    assert float(tags["promotion.champion_rmse"]) == pytest.approx(
        first["evaluation"].metrics["test_rmse"], rel=1e-6)

    # A better one takes over.
    better = run_stages(frame, quality(20), tracking_uri, tmp_path)
    assert better["decision"].promote
    assert champion_version(client, name) == "3"

    # A model below the sanity gate is never promoted, whatever the champion.
    awful = run_stages(frame, quality(1, target="price"), tracking_uri, tmp_path)
    assert not awful["decision"].promote and "sanity gate" in awful["decision"].reason
    assert champion_version(client, name) == "3"

    # Manual rollback.
    set_champion(name, "1", tracking_uri)
    assert champion_version(client, name) == "1"
    assert versions(tracking_uri, name)["1"].tags["promotion.decided_by"] == "manual"

    rows = list_versions("stockcast", "TEST", tracking_uri)
    assert [r["version"] for r in rows] == [1, 2, 3, 4]
    assert "champion" in rows[0]["aliases"]
    assert rows[0]["test_rmse"] == pytest.approx(first["evaluation"].metrics["test_rmse"])
    assert "promoted" in rows[2]["decision"]


def test_run_logs_params_metrics_artifacts_lineage_and_a_loadable_model(tmp_path, tracking_uri):
    out = run_stages(predictable_prices(), quality(3), tracking_uri, tmp_path)
    client = MlflowClient(tracking_uri)
    run = client.get_run(out["logged"].run_id)
    assert run.data.params["model.hidden_size"] == "16"
    assert run.data.params["window.sequence_length"] == "10"
    for key in ("test_rmse", "test_mae", "test_r2", "test_mape", "naive_rmse", "naive_mae",
                "naive_r2", "naive_mape", "skill_rmse"):
        assert key in run.data.metrics
    steps = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in steps] == [1, 2, 3]
    assert run.data.tags["ticker"] == "TEST" and run.data.tags["data.source"] == "csv"
    assert run.data.tags["data.rows"] == "400"
    assert len(run.inputs.dataset_inputs) == 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"plots", "validation", "config", "scaler"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/forecast_vs_actual.png" in plots and "plots/loss.png" in plots

    # The pyfunc champion round-trips to price-unit forecasts from raw prices.
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    frame = out["data"].frame
    origin = int(out["evaluation"].origins[5])
    forecast = model.predict(frame.iloc[: origin + 1])
    assert list(forecast.columns) == ["date", "step", "forecast"]
    assert forecast["forecast"].iloc[0] == pytest.approx(out["evaluation"].pred[5, 0], rel=1e-5)
    assert forecast["date"].iloc[0] > frame["Date"].iloc[origin]
    # The pytorch flavour (logged beside it, with a signature) loads and runs on windows.
    lstm = mlflow.pytorch.load_model(client.get_run(run.info.run_id).data.tags["model.torch_uri"])
    x = torch.as_tensor(out["data"].test.x[:3])
    assert lstm(x).shape == (3, 1)


def test_pyfunc_refuses_too_little_history(tmp_path, tracking_uri):
    run_stages(predictable_prices(), quality(1), tracking_uri, tmp_path)
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    with pytest.raises(Exception, match="at least 11 rows"):
        model.predict(predictable_prices().head(5))


def test_model_names_are_predictable():
    assert model_name("stockcast", "goog") == "stockcast-GOOG"
    assert model_name("stockcast", "BRK-B") == "stockcast-BRK_B"
    assert model_name("x", "^GSPC") == "x-_GSPC"


def test_listing_an_empty_store(tracking_uri):
    assert list_versions("stockcast", None, tracking_uri) == []
    _ = pd, np


def test_pyfunc_with_ohlcv_and_return_features_needs_only_raw_columns(tmp_path, tracking_uri):
    from stockcast.config import merge

    overrides = merge(quality(1), {"window": {"features": ["Open", "Close", "Volume",
                                                          "LogReturn"]}})
    out = run_stages(predictable_prices(), overrides, tracking_uri, tmp_path)
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    frame = out["data"].frame
    origin = int(out["evaluation"].origins[0])
    forecast = model.predict(frame.iloc[: origin + 1][["Date", "Open", "Close", "Volume"]])
    assert forecast["forecast"].iloc[0] == pytest.approx(out["evaluation"].pred[0, 0], rel=1e-5)
    with pytest.raises(Exception, match="Volume"):
        model.predict(frame.iloc[: origin + 1][["Date", "Open", "Close"]])
