"""What a run leaves in MLflow, and the served model's behaviour."""

import re

import mlflow
import pandas as pd
import pytest
import torch
from helpers import predictable_prices, quality, run_stages
from mlflow.tracking import MlflowClient

from stockcast.config import merge
from stockcast.modeling.adaptive import Tracking, adapted_forecast

INTERVAL_METRICS = ("coverage_80", "coverage_95", "width_95_bp", "interval_score_95", "pinball")


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """One run of every stage with the quality settings, for the tests that only read what it
    left (the run, its artifacts, the version, the served model); a test that changes the
    store or needs other settings runs its own."""
    tmp_path = tmp_path_factory.mktemp("default-run")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}?timeout=30"
    return run_stages(predictable_prices(), quality(3), tracking_uri, tmp_path), tracking_uri


def test_run_logs_metrics_baselines_artifacts_lineage_and_a_loadable_model(default_run, tmp_path):
    out, tracking_uri = default_run
    client = MlflowClient(tracking_uri)
    run = client.get_run(out["logged"].run_id)
    assert run.data.params["model.hidden_size"] == "16"
    metrics = run.data.metrics
    for key in ("test_rmse", "test_mae", "test_r2", "test_mape", "naive_rmse", "skill_rmse",
                "skill_rmse_pct", "drift_rmse", "test_direction_accuracy", "always_up_rate",
                "test_return_corr", "test_return_r2", "dm_pvalue_naive", "dm_pvalue_drift",
                *(f"test_{m}" for m in INTERVAL_METRICS), *(f"ewma_{m}" for m in INTERVAL_METRICS)):
        assert key in metrics, key
    assert metrics["skill_rmse_pct"] == pytest.approx(100 * metrics["skill_rmse"])
    assert 0 <= metrics["dm_pvalue_naive"] <= 1
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2, 3]
    assert run.data.tags["ticker"] == "TEST" and run.data.tags["data.source"] == "csv"
    from pathlib import Path

    if (Path(__file__).resolve().parents[2] / ".git").exists():  # the checkout, from any cwd
        assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", run.data.tags["code.version"])
    assert len(run.inputs.dataset_inputs) == 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"validation", "config", "scaler", "forecasts", "eda"} <= artifacts
    assert "plots" not in artifacts  # figures come after the decision (run_figures)
    summary = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/eda/summary.json")
    assert summary["rows"] == len(out["data"].frame)
    table = pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="forecasts/test_forecasts.parquet",
        dst_path=str(tmp_path / "dl"), tracking_uri=tracking_uri))
    assert list(table.columns) == ["date", "step", "origin_date", "point", "q0.025", "q0.1",
                                   "q0.5", "q0.9", "q0.975", "actual"]
    assert (table["date"] > table["origin_date"]).all()
    assert len(table) == len(out["evaluation"].origins)
    assert "model.torch_uri" not in run.data.tags  # one flavour (the pyfunc) by default
    # the logged model carries the run's final metrics (the UI's model page shows them)
    model = client.get_logged_model(run.outputs.model_outputs[0].model_id)
    linked = {m.key: m.value for m in model.metrics}
    assert linked["test_rmse"] == metrics["test_rmse"] and "dm_pvalue_naive" in linked
    assert "val_loss" not in linked  # per-epoch histories stay on the run


def test_figures_are_added_to_the_finished_run(tmp_path, tracking_uri):
    from stockcast.registry.run_figures import figures_wanted, log_run_figures

    out = run_stages(predictable_prices(), quality(2), tracking_uri, tmp_path)
    run_id = out["logged"].run_id
    logged = log_run_figures(run_id, out["validated"], out["fit"], out["evaluation"],
                             out["cfg"], out["store"], tmp_path / "figures")
    assert logged["plots"] == ["coverage.png", "forecast_fan.png", "loss.png", "residuals.png"]
    client = MlflowClient(tracking_uri)
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {
        f"plots/{name}" for name in logged["plots"]}
    eda = {a.path for a in client.list_artifacts(run_id, "eda")}
    assert {"eda/price_history.png", "eda/autocorrelation.png", "eda/summary.json"} <= eda
    assert client.get_run(run_id).info.status == "FINISHED"
    assert figures_wanted("promoted", True)[0] and figures_wanted("all", False)[0]
    assert figures_wanted("promoted", False) == (
        False, "not drawn (tracking.figures: promoted; this version was not promoted)")
    assert not figures_wanted("none", True)[0]


def test_the_torch_flavour_is_logged_on_request(tmp_path, tracking_uri):
    out = run_stages(predictable_prices(), merge(quality(1), {"tracking": {
        "log_torch_model": True}}), tracking_uri, tmp_path)
    uri = MlflowClient(tracking_uri).get_run(out["logged"].run_id).data.tags["model.torch_uri"]
    network = mlflow.pytorch.load_model(uri)
    x = torch.as_tensor(out["data"].test.x[:3])
    assert torch.allclose(network(x), out["serving"].forecaster.model(x))


def test_the_served_model_is_refit_through_the_last_date(default_run):
    out, tracking_uri = default_run
    frame, data = out["data"].frame, out["data"]
    tags = MlflowClient(tracking_uri).get_run(out["logged"].run_id).data.tags
    assert tags["fit.serve_end"] == str(frame["Date"].iloc[-1].date())
    assert tags["fit.eval_end"] == str(frame["Date"].iloc[data.bounds.train_end - 1].date())
    assert tags["fit.refit"] == "True"
    assert tags["fit.refit_from"] == "evaluation fit"  # the default warm refit
    served, evaluated = out["serving"].forecaster.model, out["forecaster"].model
    assert not torch.equal(served.head.weight, evaluated.head.weight)
    # What is served is what was evaluated: on the test windows the refit's 95 % intervals
    # are as wide as the evaluated ones (median), and the raw ratio is recorded.
    import numpy as np

    test, last = data.test, data.last_close(data.test)
    widths = [np.subtract(*f.forecast_split(test, last).interval(0.95)[::-1])
              for f in (out["serving"].forecaster, out["forecaster"])]
    assert np.median(widths[0] / widths[1]) == pytest.approx(1.0, abs=0.02)
    assert tags["fit.width_ratio"] == " ".join(f"{r:.3f}" for r in out["serving"].width_ratio)

    # The pyfunc champion forecasts from raw prices: point, intervals and quantiles, ordered.
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    forecast = model.predict(frame)
    assert list(forecast.columns)[:7] == ["date", "step", "forecast", "lower_80", "upper_80",
                                          "lower_95", "upper_95"]
    row = forecast.iloc[0]
    assert row["lower_95"] < row["lower_80"] < row["upper_80"] < row["upper_95"]
    assert forecast["date"].iloc[0] > frame["Date"].iloc[-1]
    # Date as text (pd.read_csv), no Date at all, extra columns: all accepted.
    as_text = frame.assign(Date=frame["Date"].dt.strftime("%Y-%m-%d"), Note="x")
    assert model.predict(as_text)["forecast"].iloc[0] == pytest.approx(row["forecast"])
    no_date = model.predict(frame.drop(columns="Date"))
    assert "date" not in no_date and no_date["forecast"].iloc[0] == pytest.approx(row["forecast"])


def test_refit_off_serves_the_evaluation_fit(tmp_path, tracking_uri):
    out = run_stages(predictable_prices(), merge(quality(2), {"train": {"refit": False}}),
                     tracking_uri, tmp_path)
    tags = MlflowClient(tracking_uri).get_run(out["logged"].run_id).data.tags
    assert tags["fit.refit"] == "False" and tags["fit.serve_end"] == tags["fit.eval_end"]


def test_pyfunc_names_what_is_missing(tmp_path, tracking_uri):
    out = run_stages(predictable_prices(), merge(quality(1), {"window": {
        "features": ["Open", "Close", "Volume", "LogReturn"]}}), tracking_uri, tmp_path)
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model("models:/stockcast-TEST@champion")
    frame = out["data"].frame
    with pytest.raises(Exception, match="Volume"):
        model.predict(frame[["Date", "Open", "Close"]])
    with pytest.raises(Exception, match="at least 11 rows"):
        model.predict(frame.head(5))
    assert len(model.predict(frame[["Date", "Open", "High", "Low", "Close", "Volume"]])) == 1


def test_the_served_model_reads_raw_rows_as_the_pipeline_does(default_run):
    import pandas as pd

    from stockcast.data.files import normalize_prices

    out = default_run[0]
    model = out["serving"].forecaster
    from stockcast.registry.pyfunc import StockcastForecaster

    served = StockcastForecaster(model, "TEST")
    clean = out["data"].frame.tail(40).reset_index(drop=True)
    # Raw as a user has it: unadjusted prices beside Adj Close, other spellings, text dates.
    raw = clean.assign(**{"Adj Close": clean["Close"]})
    raw[["Open", "High", "Low", "Close"]] *= 2.0  # a 2:1 split not yet applied
    raw = raw.rename(columns={"Close": "close"}).assign(Date=clean["Date"].dt.strftime("%Y-%m-%d"))
    pd.testing.assert_frame_equal(served.predict(None, raw), served.predict(None, clean))
    assert normalize_prices(raw)["Close"].tolist() == pytest.approx(clean["Close"].tolist())
    for bad in (clean.assign(Close=clean["Close"].where(clean.index != 30)),
                clean.assign(Close=-clean["Close"]), clean.iloc[::-1]):
        with pytest.raises(ValueError, match="Close|Date"):
            served.predict(None, bad)


def test_an_lstm_worse_than_a_volatility_model_is_not_served(tmp_path, tracking_uri):
    import numpy as np

    from stockcast.modeling.volatility_forecasters import VolatilityForecaster

    def widen(fit):  # plant intervals four times too wide: every calibrated baseline beats it
        fit.forecaster.z = fit.forecaster.z * 4.0

    # Served bands aimed at the score (intervals.adapt_target): the logged model must carry it.
    aimed = merge(quality(2), {"intervals": {"adapt_target": "score"}})
    out = run_stages(predictable_prices(), aimed, tracking_uri, tmp_path, after_fit=widen)
    evaluation, metrics = out["evaluation"], out["evaluation"].metrics
    choice = evaluation.choice
    assert not choice.is_lstm
    assert metrics[f"{choice.prefix}_interval_score_95"] < metrics["lstm_interval_score_95"]
    assert choice.pvalue < 0.05 and choice.reason.startswith("LSTM worse than")
    # The headline is the served forecaster's; the LSTM's metrics stay beside it, renamed.
    for key in ("coverage_80", "coverage_95", "interval_score_95", "pinball"):
        assert metrics[f"test_{key}"] == metrics[f"{choice.prefix}_{key}"]
    assert metrics["test_rmse"] == metrics["naive_rmse"] and metrics["skill_rmse_pct"] == 0
    assert evaluation.lstm_metrics["test_coverage_95"] == metrics["lstm_coverage_95"]
    table = evaluation.table
    covered = (table["actual"] >= table["q0.025"]) & (table["actual"] <= table["q0.975"])
    assert metrics["test_coverage_95"] == pytest.approx(covered.mean())
    client = MlflowClient(tracking_uri)
    run = client.get_run(out["logged"].run_id)
    assert run.data.metrics["test_interval_score_95"] == metrics["test_interval_score_95"]
    assert "serves " + evaluation.served_label in run.data.tags["mlflow.note.content"]
    version = client.get_model_version("stockcast-TEST", out["version"])
    assert version.tags["forecaster"] == choice.tag  # what the Models page shows
    assert version.tags["forecaster.reason"] == choice.reason  # and why
    from stockcast.modeling.volatility_forecasters import BY_TAG

    # What the Models page's ~40 characters show: the served model first, then the decision.
    assert f"(serves {BY_TAG[choice.tag].short})" in version.description[:40]
    assert version.description.endswith(f"· serves: {choice.reason}")
    tags = run.data.tags
    assert tags["forecaster"] == choice.tag != "lstm"
    assert tags["forecaster.reason"] == choice.reason
    assert "model.torch_uri" not in tags  # no network is served
    assert tags["fit.refit"] == "True" and "re-estimated through the last date" in tags[
        "fit.refit_from"]  # the refit tags agree with each other
    # The version serves the baseline refit through the last date, with its calibration, and
    # the table promotion compares is the baseline's.
    served = out["serving"].forecaster
    assert isinstance(served, VolatilityForecaster) and served.kind == evaluation.evaluated.kind
    np.testing.assert_array_equal(served.z, evaluation.evaluated.z)
    frame = out["data"].frame
    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/stockcast-TEST/{out['version']}")
    forecast = model.predict(frame)
    last = np.array([len(frame) - 1])
    expected = adapted_forecast(served, frame, last, Tracking(target="score")).forecast
    other = adapted_forecast(served, frame, last, Tracking(target="coverage")).forecast
    assert forecast["forecast"].iloc[0] == pytest.approx(frame["Close"].iloc[-1])
    assert forecast["upper_95"].iloc[0] == pytest.approx(expected.interval(0.95)[1][0, 0])
    assert forecast["upper_95"].iloc[0] != pytest.approx(other.interval(0.95)[1][0, 0])
    assert (evaluation.table["point"] == evaluation.table["origin_date"].map(
        frame.set_index("Date")["Close"])).all()
    # The LSTM it trained is kept beside the baseline: tomorrow's fit can start from it.
    from stockcast.registry.evaluation_fit import load_evaluation_fit, load_evaluation_lstm
    from stockcast.registry.warm_start import champion_start

    store, run_id = out["store"], out["logged"].run_id
    assert isinstance(load_evaluation_fit(store, run_id, None).forecaster, VolatilityForecaster)
    network = load_evaluation_lstm(store, store.client.get_run(run_id), None).model
    trained = out["fit"].forecaster.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in network.state_dict().items())
    start = champion_start("stockcast-TEST", out["cfg"], store)
    v = out["version"]
    label = f"champion v{v} (run" if out["decision"].promote else f"v{v} (run"
    assert start.model is not None and start.source.startswith(label), start.source


def test_the_service_reads_only_the_recent_rows_and_bounds_the_request(tmp_path, tracking_uri):
    import numpy as np

    from stockcast.registry.pyfunc import WARMUP_ROWS, StockcastForecaster

    out = run_stages(predictable_prices(800), quality(1), tracking_uri, tmp_path)
    frame = out["data"].frame
    served = StockcastForecaster(out["serving"].forecaster, "TEST", max_rows=790)
    # The window, the warm-up and the adaptation's past are all it reads, and that is enough:
    # its forecast equals the adapted one from the whole history (the volatility has forgotten
    # its start, and the adaptation replays the same realised forecasts).
    assert served.rows_used == served.min_rows + WARMUP_ROWS + served.adaptation.window + 1
    whole = adapted_forecast(out["serving"].forecaster, frame, np.array([len(frame) - 1]),
                             served.adaptation)
    answer = served.predict(None, frame.tail(served.rows_used))
    np.testing.assert_allclose(answer["upper_95"], whole.forecast.interval(0.95)[1][0], rtol=1e-7)
    assert answer["adapted_on"].tolist() == [served.adaptation.window]
    with pytest.raises(ValueError, match="800 rows sent; at most 790 are accepted"):
        served.predict(None, frame)
