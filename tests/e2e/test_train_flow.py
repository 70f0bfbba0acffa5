"""The real training and forecast flows, under Prefect, on the bundled sample data, logging
to a temporary SQLite MLflow store."""

from __future__ import annotations

import mlflow
import pytest
from helpers import TINY
from mlflow.tracking import MlflowClient

from stockcast.config import build_config, merge
from stockcast.errors import PipelineFailed

pytestmark = pytest.mark.slow


def config(tmp_path, uri, **extra):
    return build_config(merge(TINY, merge({
        "data": {"source": "sample", "data_dir": str(tmp_path / "data")},
        "tracking": {"tracking_uri": uri},
        "forecast": {"output_dir": str(tmp_path / "forecasts")},
    }, extra)))


def test_two_tickers_register_versions_and_champions(prefect_api, tmp_path, tracking_uri):
    from flows.train import train_pipeline

    cfg = config(tmp_path, tracking_uri, tickers=["GOOG", "AAPL"])
    summary = train_pipeline(config=cfg)
    client = MlflowClient(tracking_uri)
    for ticker in ("GOOG", "AAPL"):
        assert summary[ticker]["version"] == "1" and summary[ticker]["promoted"]
        assert summary[ticker]["source"] == "sample"
        mv = client.get_model_version_by_alias(f"stockcast-{ticker}", "champion")
        assert str(mv.version) == "1"
        run = client.get_run(mv.run_id)
        assert run.data.tags["ticker"] == ticker and run.data.tags["data.source"] == "sample"
        assert run.data.metrics["test_rmse"] == pytest.approx(summary[ticker]["test_rmse"])
        assert run.data.metrics["naive_rmse"] > 0
        for key in ("skill_rmse_pct", "dm_pvalue_naive", "test_coverage_95", "ewma_coverage_95",
                    "test_interval_score_95", "ewma_interval_score_95", "drift_rmse"):
            assert key in run.data.metrics, key
        assert run.data.tags["fit.serve_end"] == "2013-03-01"
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) >= 1
        # The exploratory data report travels with every run.
        eda = {a.path for a in client.list_artifacts(run.info.run_id, "eda")}
        assert {"eda/price_history.png", "eda/summary.json"} <= eda

    # The forecast flow uses each champion.
    from flows.forecast import forecast_pipeline

    forecasts = forecast_pipeline(config=cfg)
    for ticker in ("GOOG", "AAPL"):
        item = forecasts[ticker]
        assert item["version"] == "1" and len(item["rows"]) == cfg.window.horizon
        assert (tmp_path / "forecasts" / ticker).is_dir()
        assert item["rows"][0]["date"] > item["last_date"]
        row = item["rows"][0]
        assert row["lower_95"] < row["lower_80"] < row["forecast"] < row["upper_80"] < row["upper_95"]
        written = list((tmp_path / "forecasts" / ticker).glob("*.csv"))
        assert [f.name for f in written] == [f"{ticker}-{row['date']}.csv"]  # the forecast's date
    mlflow.set_tracking_uri(tracking_uri)


def test_one_failing_ticker_does_not_stop_the_others(prefect_api, tmp_path, tracking_uri):
    from flows.train import train_pipeline

    # MSFT has no bundled sample: its ingest fails; GOOG must still register.
    cfg = config(tmp_path, tracking_uri, tickers=["GOOG", "MSFT"])
    with pytest.raises(PipelineFailed) as err:
        train_pipeline(config=cfg)
    assert "MSFT" in err.value.failures and "no bundled sample" in err.value.failures["MSFT"]
    assert list(err.value.summary) == ["GOOG"]
    client = MlflowClient(tracking_uri)
    assert str(client.get_model_version_by_alias("stockcast-GOOG", "champion").version) == "1"
    assert client.search_model_versions("name='stockcast-MSFT'") == []


def test_forecast_without_a_champion_is_reported(prefect_api, tmp_path, tracking_uri):
    from flows.forecast import forecast_pipeline

    with pytest.raises(PipelineFailed, match="no champion yet"):
        forecast_pipeline(config=config(tmp_path, tracking_uri, tickers=["IBM"]))


def test_reseeding_the_same_data_does_not_churn_the_registry(prefect_api, tmp_path, tracking_uri):
    from flows.train import train_pipeline

    client = MlflowClient(tracking_uri)
    decisions = []
    for seed in (1, 2):  # reseeding at scale: bench/promotion.py (30 reruns, none promoted)
        cfg = build_config(merge({"train": {"progress": False, "threads": 1, "seed": seed,
                                               "device": "cpu"}}, {
            "data": {"source": "sample", "data_dir": str(tmp_path / "data")},
            "tracking": {"tracking_uri": tracking_uri}}))
        summary = train_pipeline(config=cfg)["GOOG"]
        decisions.append(summary)
        champion = client.get_model_version_by_alias("stockcast-GOOG", "champion")
        assert str(champion.version) == "1"  # the first version, throughout
    assert decisions[0]["promoted"] and not any(d["promoted"] for d in decisions[1:])
    tags = client.get_model_version("stockcast-GOOG", "2").tags
    assert float(tags["promotion.pvalue"]) >= 0.05 and int(tags["promotion.pairs"]) >= 30
    assert tags["promotion.seed_sd"] == "0.012"  # the training noise the test allowed for
    # Figures are drawn for the promoted run only (tracking.figures: promoted); every run
    # keeps its metrics, forecast table and data summary, and says why it has no figures.
    first, second = (client.get_run(d["run_id"]) for d in decisions)
    assert first.data.tags["figures"] == decisions[0]["figures"] == "drawn (tracking.figures: promoted)"
    assert "not promoted" in second.data.tags["figures"] == decisions[1]["figures"]
    listed = [{a.path for a in client.list_artifacts(r.info.run_id, "eda")} for r in (first, second)]
    assert "eda/price_history.png" in listed[0] and listed[1] == {"eda/summary.json", "eda/summary.md"}
    assert client.list_artifacts(second.info.run_id, "plots") == []
    assert {a.path for a in client.list_artifacts(first.info.run_id, "plots")} == {
        f"plots/{n}.png" for n in ("forecast_fan", "coverage", "loss", "residuals")}


def test_a_global_model_trains_once_for_every_ticker(prefect_api, tmp_path, tracking_uri):
    from flows.train import train_pipeline

    # MSFT has no sample: it fails at ingest alone; GOOG trains on the global network with the
    # other bundled samples, and is calibrated, registered and promoted on its own.
    cfg = config(tmp_path, tracking_uri, tickers=["GOOG", "MSFT"], model={"scope": "global"})
    with pytest.raises(PipelineFailed) as err:
        train_pipeline(config=cfg)
    assert list(err.value.failures) == ["MSFT"] and "no bundled sample" in err.value.failures["MSFT"]
    client = MlflowClient(tracking_uri)
    mv = client.get_model_version_by_alias("stockcast-GOOG", "champion")
    run = client.get_run(mv.run_id)
    assert run.data.tags["fit.trained_on"] == "GOOG,AAPL,IBM"
    assert run.data.params["model.scope"] == "global"
    assert "garch_interval_score_95" in run.data.metrics
