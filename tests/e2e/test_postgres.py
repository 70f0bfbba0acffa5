"""A team's deployment, as docs/team.md sets it up: PostgreSQL behind both servers (an MLflow
tracking server with a proxied artifact store, a Prefect server), prefect.yaml deployed, a
worker, then the CLI and the REST service against the same stores."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
import requests
import yaml
from helpers import TINY
from mlflow.tracking import MlflowClient
from postgres_server import postgres
from real_servers import (
    BIN,
    ROOT,
    cli,
    free_port,
    prefect,
    prefect_server,
    start_mlflow_server,
    stop,
    wait_healthy,
)

from stockcast.config import merge
from stockcast.data.files import read_price_file, sample_path

pytestmark = pytest.mark.slow


def stockcast(env: dict, *args: str) -> subprocess.CompletedProcess:
    return cli("stockcast", env, *args, timeout=400)


def served_by(url: str, body: dict, version: str, seconds: float = 30) -> None:
    """Every answer succeeds, and within ``seconds`` they come from ``version``."""
    deadline = time.monotonic() + seconds
    while True:
        answer = requests.post(f"{url}/invocations", json=body, timeout=30)
        assert answer.status_code == 200, answer.text[:300]
        if answer.headers["x-stockcast-model"] == f"stockcast-GOOG v{version}":
            return
        assert time.monotonic() < deadline, answer.headers["x-stockcast-model"]
        time.sleep(0.3)


def rows_in(dsn: str, query: str) -> list[tuple]:
    import psycopg2  # the driver `stockcast[postgres]` installs; the store needs it anyway

    with psycopg2.connect(dsn) as db, db.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def test_a_team_on_postgresql_trains_promotes_serves_and_rolls_back(tmp_path):
    with postgres("mlflow", "prefect") as server:
        mlflow_proc, uri = start_mlflow_server(tmp_path, f"postgresql://{server}/mlflow")
        try:
            with prefect_server(tmp_path, f"postgresql+asyncpg://{server}/prefect") as env:
                run_the_team_night(env, uri, tmp_path)
        finally:
            stop(mlflow_proc)
        # Everything the team relies on lives in PostgreSQL and the proxied artifact store.
        versions = rows_in(f"postgresql://{server}/mlflow",
                           "SELECT name, version FROM model_versions ORDER BY name, version")
        assert versions == [("stockcast-GOOG", 1), ("stockcast-GOOG", 2), ("stockcast-IBM", 1)]
        (flow_runs,) = rows_in(f"postgresql://{server}/prefect",
                               "SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'")
        assert flow_runs[0] >= 2  # the deployment's night and the CLI's run
        assert any((tmp_path / "server-artifacts").rglob("MLmodel"))


def run_the_team_night(env: dict, uri: str, tmp_path) -> None:
    config = merge(TINY, {"data": {"source": "sample", "data_dir": str(tmp_path / "data")},
                          "tracking": {"tracking_uri": uri}})
    # The nightly deployment, as `make deploy` and `make worker` run it.
    prefect(env, "work-pool", "create", "stockcast-pool", "--type", "process")
    prefect(env, "--no-prompt", "deploy", "--name", "nightly-retrain")
    params = {"config": merge(config, {"tickers": ["GOOG", "IBM"]})}
    prefect(env, "deployment", "run", "train-pipeline/nightly-retrain", "--params",
            json.dumps(params))
    prefect(env, "worker", "start", "--pool", "stockcast-pool", "--run-once", timeout=400)
    client = MlflowClient(uri)
    for ticker in ("GOOG", "IBM"):
        assert client.get_model_version_by_alias(f"stockcast-{ticker}", "champion").version == "1"
    # `make ui TRACKING_URI=...`: the served MLflow's own links, on the runs table.
    links = subprocess.run([str(BIN / "python"), "-m", "stockcast.registry.ui_links", uri],
                           capture_output=True, text=True, timeout=120, check=True).stdout
    assert f"{uri}/#/models/stockcast-IBM?workflowType=machine_learning" in links, links

    # A second GOOG version from the CLI, tracked on the same server; promoted by hand.
    cli_env = {**env, "STOCKCAST_HOME": str(tmp_path / "home"), "MLFLOW_TRACKING_URI": uri}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    cfg = ["--config", str(tmp_path / "config.yaml")]
    stockcast(cli_env, "run", "--ticker", "GOOG", *cfg)
    assert sorted(v.version for v in client.search_model_versions("name='stockcast-GOOG'")
                  ) == ["1", "2"]
    stockcast(cli_env, "promote", "--ticker", "GOOG", "--version", "2", *cfg)
    forecast = stockcast(cli_env, "forecast", "--ticker", "GOOG", *cfg)
    assert "GOOG" in forecast.stdout and "v2" in forecast.stdout, forecast.stdout

    # The REST service on the champion; a manual rollback reaches it while it runs.
    port = free_port()
    service = subprocess.Popen([str(BIN / "stockcast"), "serve-model", "--ticker", "GOOG",
                                "--port", str(port), "--reload-seconds", "1", *cfg],
                               env=cli_env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    frame = read_price_file(sample_path("GOOG")).tail(120)
    frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
    body = {"dataframe_split": frame.to_dict(orient="split")}
    try:
        wait_healthy(f"{url}/ping", service)
        served_by(url, body, "2")
        stockcast(cli_env, "promote", "--ticker", "GOOG", "--version", "1", *cfg)
        served_by(url, body, "1")
    finally:
        os.killpg(service.pid, 15)
        service.wait(30)
    assert client.get_model_version_by_alias("stockcast-GOOG", "champion").version == "1"
