"""The nightly warm start through the real CLI: tonight's fit starts from the champion's
evaluation-fit weights when the settings match, from scratch (and says why) otherwise."""

import pytest
from cli_project import store_uri, write_cfg
from mlflow.tracking import MlflowClient

from stockcast.cli import main

pytestmark = pytest.mark.slow


def latest_run(project):
    client = MlflowClient(store_uri(project))
    exp = client.get_experiment_by_name("stockcast")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]


def test_a_nightly_run_warm_starts_only_from_a_matching_champion(project, capsys):
    champion = MlflowClient(store_uri(project)).get_model_version_by_alias("stockcast-GOOG",
                                                                          "champion")
    cfg = write_cfg(project, train={"epochs": 5, "warm_start_epochs": 2})
    assert main(["run", "--config", cfg, "--source", "cache"]) == 0
    run = latest_run(project)
    assert run.data.tags["fit.warm_start_from"] == (
        f"champion v{champion.version} (run {champion.run_id[:8]})")
    assert run.data.metrics["best_epoch"] <= 2  # at most warm_start_epochs
    capsys.readouterr()

    other = write_cfg(project, model={"hidden_size": 12})
    assert main(["run", "--config", other, "--source", "cache"]) == 0
    assert latest_run(project).data.tags["fit.warm_start_from"] == (
        f"scratch: champion v{champion.version}'s settings differ (model.hidden_size 8 -> 12)")
    cold = write_cfg(project, train={"warm_start_epochs": 0})
    assert main(["run", "--config", cold, "--source", "cache"]) == 0
    assert latest_run(project).data.tags["fit.warm_start_from"] == (
        "scratch: train.warm_start_epochs is 0")
