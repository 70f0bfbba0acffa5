"""Against real servers on 127.0.0.1: a Prefect server with prefect.yaml deployed and a worker,
and an MLflow tracking server (both on PostgreSQL: test_postgres.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import TINY
from mlflow.tracking import MlflowClient
from real_servers import BIN, ROOT, free_port, prefect, start, start_mlflow_server, stop
from real_servers import prefect_server as running_prefect_server

pytestmark = pytest.mark.slow


@pytest.fixture
def prefect_server(tmp_path, migrated_prefect_db):
    with running_prefect_server(tmp_path, migrated=migrated_prefect_db) as env:
        yield env


INSPECT = """
import asyncio, json
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as c:
        out = {}
        for d in await c.read_deployments():
            out[d.name] = [{"cron": s.schedule.cron, "timezone": s.schedule.timezone,
                            "active": s.active} for s in d.schedules]
        print(json.dumps(out))
asyncio.run(main())
"""


def assert_deployed_as_scheduled(env: dict) -> None:
    """prefect.yaml's two deployments, each on a weekday cron in New York time, active."""
    shown = subprocess.run([sys.executable, "-c", INSPECT], env=env, capture_output=True,
                           text=True, timeout=120, check=True)
    deployments = json.loads(shown.stdout.strip().splitlines()[-1])
    assert set(deployments) == {"nightly-retrain", "daily-forecast"}
    for name in deployments:
        (schedule,) = deployments[name]
        assert schedule["timezone"] == "America/New_York" and schedule["active"]
        assert schedule["cron"].endswith("* * 1-5")  # weekdays


CANCEL = """
import asyncio, sys, time
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.states import Cancelling

async def main(name):
    async with get_client() as c:
        deployment = await c.read_deployment_by_name(name)
        run = await c.create_flow_run_from_deployment(deployment.id,
                                                      parameters={"config": %s})
        deadline = time.monotonic() + 300
        while True:  # until its fit task is training (a task run just created has no state)
            tasks = await c.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[run.id])))
            if any(t.name.startswith("fit-") and t.state is not None and t.state.is_running()
                   for t in tasks):
                break
            assert time.monotonic() < deadline, "training never started"
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)
        asked = (await c.set_flow_run_state(run.id, Cancelling())).state.timestamp
        sent = time.monotonic()
        while not (state := (await c.read_flow_run(run.id)).state).is_final():
            assert time.monotonic() - sent < 180, state
            await asyncio.sleep(0.5)
        (fit,) = [t for t in await c.read_task_runs(flow_run_filter=FlowRunFilter(
            id=FlowRunFilterId(any_=[run.id]))) if t.name.startswith("fit-")]
        # Seconds from the request to the end of training, and to the run's final state.
        print(state.type.value, fit.state.type.value, (fit.state.timestamp - asked).total_seconds(),
              time.monotonic() - sent)

asyncio.run(main(sys.argv[1]))
"""


def test_cancelling_a_deployment_run_stops_its_training_and_registers_nothing(
        prefect_server, tmp_path):
    # Prefect's cancellation of a scheduled run: the worker stops the flow's process (SIGTERM),
    # training ends at the next mini-batch, the run ends Cancelled, no version is registered.
    env = {**prefect_server, "PREFECT_WORKER_QUERY_SECONDS": "2"}
    prefect(env, "work-pool", "create", "stockcast-pool", "--type", "process")
    prefect(env, "--no-prompt", "deploy", "--all")
    assert_deployed_as_scheduled(env)
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    config = {"tickers": ["GOOG"], "tracking": {"tracking_uri": uri},
              # A deployment holds a source override to the freshness rule: the 2013 sample
              # is accepted here on purpose.
              "data": {"source": "sample", "data_dir": str(tmp_path / "data"),
                       "max_staleness_days": 100_000},
              "model": {"hidden_size": 64, "num_layers": 2},
              "train": {"epochs": 500, "patience": 500, "progress": False, "device": "cpu"}}
    worker = start([str(BIN / "prefect"), "worker", "start", "--pool", "stockcast-pool"], env,
                   tmp_path / "worker.log")
    try:
        out = subprocess.run([sys.executable, "-c", CANCEL % repr(config),
                              "train-pipeline/nightly-retrain"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    finally:
        stop(worker)
    assert out.returncode == 0, out.stdout + out.stderr + (tmp_path / "worker.log").read_text()
    state, fit, training_ended, cancelled = out.stdout.split()[-4:]
    assert state == "CANCELLED", out.stdout + (tmp_path / "worker.log").read_text()[-3000:]
    assert fit == "FAILED" and "stopped by SIGTERM" in (tmp_path / "worker.log").read_text()
    # Training stops within a batch of the worker's signal; the worker notices the request
    # within PREFECT_WORKER_QUERY_SECONDS and marks the run once its process has exited
    # (15.6 s on a quiet 2-core machine, 32 s with four test processes sharing the cores).
    assert float(training_ended) < 10, f"training ended {float(training_ended):.1f} s after"
    assert float(cancelled) < 60, f"the run was marked cancelled after {float(cancelled):.1f} s"
    assert MlflowClient(uri).search_model_versions("name='stockcast-GOOG'") == []


def assert_mlflow_links_only_when_verbose(uri: str, home, capfd) -> None:
    """MLflow prints "View run ... / View experiment ..." for an HTTP store whenever a run
    ends; the CLI keeps the console to the project's lines unless -v."""
    from unittest import mock

    import mlflow

    from stockcast.console import apply_env_defaults

    mlflow.set_tracking_uri(uri)
    for verbose in (True, False):
        with mock.patch.dict(os.environ):  # the CLI's settings, for this block only
            os.environ.pop("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", None)
            apply_env_defaults(home, verbose=verbose)
            with mlflow.start_run():
                pass
        assert ("View run" in capfd.readouterr().out) == verbose


def test_a_dask_cluster_of_worker_processes_trains_and_registers_two_tickers(
        prefect_api, tmp_path, capfd):
    """As a team runs it: `dask scheduler` and two `dask worker` processes, the MLflow store
    behind `mlflow server` (artifacts proxied through it), and the flow pointed at the
    scheduler (`--dask-address`)."""
    from distributed import Client

    from flows.train import train_pipeline
    from stockcast.config import build_config, merge

    mlflow_proc, uri = start_mlflow_server(tmp_path)
    port = free_port()
    env = dict(os.environ, PREFECT_API_URL=prefect_api, MLFLOW_TRACKING_URI=uri)
    procs = [start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                    "--no-dashboard"], env, tmp_path / "scheduler.log")]
    address = f"tcp://127.0.0.1:{port}"
    procs += [start([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                     "--name", f"w{i}"], env, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        assert_mlflow_links_only_when_verbose(uri, tmp_path, capfd)
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            cfg = build_config(merge(TINY, {
                "tickers": ["GOOG", "IBM"],
                "data": {"source": "sample", "data_dir": str(tmp_path / "data")},
                "tracking": {"tracking_uri": uri},
                "orchestration": {"task_runner": "dask", "dask_address": address}}))
            summary = train_pipeline(config=cfg)
            # The tasks ran in the worker processes, on both of them.
            executed = client.run(lambda dask_worker: len(dask_worker.state.log))
        assert set(summary) == {"GOOG", "IBM"}
        assert len(executed) == 2 and all(n > 0 for n in executed.values()), executed
        registry = MlflowClient(uri)
        for ticker in ("GOOG", "IBM"):
            assert str(registry.get_model_version_by_alias(f"stockcast-{ticker}",
                                                           "champion").version) == "1"
        assert any((tmp_path / "server-artifacts").rglob("MLmodel"))  # through the server
    finally:
        for proc in (*procs, mlflow_proc):
            stop(proc)
