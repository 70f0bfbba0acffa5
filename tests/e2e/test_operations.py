"""What an operator sees: project logs and a summary artifact in Prefect, the freshness
policy, failure notifications, and an MLflow experiment a person can read."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cli_project import fails_cleanly, state, store_uri, write_cfg
from helpers import TINY
from mlflow.tracking import MlflowClient
from real_servers import free_port, wait_healthy

from stockcast.cli import main
from stockcast.config import build_config, merge
from stockcast.errors import PipelineFailed

pytestmark = pytest.mark.slow


def flow_run_records(flow_run_id):
    """The Prefect logs and artifacts of one flow run (its task runs' included)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )

    async def read():
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
            return logs, artifacts

    return asyncio.run(read())


def test_a_fallback_reaches_the_prefect_logs_and_the_summary_artifact(prefect_api, tmp_path,
                                                                      tracking_uri, fake_yf):
    from flows.train import train_pipeline

    fake_yf.error = ConnectionError("Could not resolve host: query2.finance.yahoo.com")
    cfg = build_config(merge(TINY, {"data": {"source": "auto", "data_dir": str(tmp_path / "d")},
                                    "tracking": {"tracking_uri": tracking_uri}}))
    state_ = train_pipeline(config=cfg, return_state=True)
    assert state_.is_completed()  # a first offline run on the sample is accepted
    logs, artifacts = flow_run_records(state_.state_details.flow_run_id)
    messages = [log.message for log in logs]
    assert any("FALLING BACK" in m and "GOOG" in m for m in messages), messages
    assert any(m.startswith("epoch 1/") for m in messages)  # training progress, too
    by_key = {a.key: a for a in artifacts}
    rows = json.loads(by_key["train-summary"].data)
    assert rows[0]["ticker"] == "GOOG" and rows[0]["source"] == "sample"
    assert rows[0]["status"] == "champion" and "coverage_95" in rows[0]
    # What the Prefect pane shows first: the status, what is served, the decision in brief.
    assert list(rows[0])[:5] == ["ticker", "status", "serves", "version", "decision"]
    assert rows[0]["decision"].startswith("CHAMPION") and len(rows[0]["decision"]) <= 60
    assert "FALLBACK" in by_key["train-warnings"].data
    decisions = by_key["train-decisions"].data  # the reasons in full, not a cut-off cell
    assert "## GOOG" in decisions and "- decision: promoted: no champion yet" in decisions
    assert "- forecaster: " in decisions


def test_a_stale_fallback_does_not_register_or_promote(project, capsys, fake_yf):
    fake_yf.error = ConnectionError("Could not resolve host: query2.finance.yahoo.com")
    stale = {"data": {"max_staleness_days": 3}}
    # Yahoo down, the cache ends 2013: the ticker fails before training, nothing is registered.
    log_file = project / "logs" / "stockcast.log"
    seen = len(log_file.read_text()) if log_file.exists() else 0
    fails_cleanly(capsys, ["run", "--config", write_cfg(project, **stale)], project,
                  "trading sessions ago", "max_staleness_days")
    logged = log_file.read_text()[seen:]  # this run's lines
    assert "trading sessions ago" in logged and "epoch 1/" not in logged  # never trained
    # With on_stale: warn the run completes, trains, and still registers nothing.
    before = state(project)
    warn = {"data": {"max_staleness_days": 3, "on_stale": "warn"}}
    assert main(["run", "--config", write_cfg(project, **warn)]) == 0
    assert "not registered" in capsys.readouterr().out
    assert state(project) == before


def test_a_forecast_from_stale_prices_is_flagged_or_refused(project, capsys, fake_yf):
    stale = write_cfg(project, data={"max_staleness_days": 3})
    # Historical prices asked for explicitly: forecast, but flagged everywhere.
    assert main(["forecast", "--config", stale, "--source", "sample"]) == 0
    out = capsys.readouterr().out
    assert "STALE: forecast from stale prices: they end 2013-03-01" in out
    client = MlflowClient(store_uri(project))
    exp = client.get_experiment_by_name("stockcast-forecasts")
    run = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]
    assert run.data.tags["data.stale"] == "True" and int(run.data.tags["data.sessions_behind"]) > 3
    # Yahoo down, the cache ends 2013: the freshness policy (fail) refuses the forecast.
    fake_yf.error = ConnectionError("Could not resolve host: query2.finance.yahoo.com")
    fails_cleanly(capsys, ["forecast", "--config", stale], project, "trading sessions ago")


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        _Receiver.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_failed_flow_run_notifies_a_webhook(prefect_api, tmp_path, tracking_uri):
    from flows.train import train_pipeline

    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Receiver.bodies = []
    try:
        cfg = build_config(merge(TINY, {
            "tickers": ["MSFT"], "data": {"source": "sample", "data_dir": str(tmp_path / "d")},
            "tracking": {"tracking_uri": tracking_uri},
            "notify": {"url": f"json://127.0.0.1:{server.server_port}/stockcast"}}))
        with pytest.raises(PipelineFailed):
            train_pipeline(config=cfg)
    finally:
        server.shutdown()
    assert len(_Receiver.bodies) == 1
    message = json.loads(_Receiver.bodies[0])
    assert "Failed" in message["title"] and "MSFT" in message["message"]
    assert message["type"] == "failure"  # not "info"


def test_the_mlflow_experiment_is_readable(prefect_api, tmp_path, tracking_uri):
    from flows.train import train_pipeline

    for seed in (1, 2):
        cfg = build_config(merge(TINY, {"data": {"source": "sample",
                                                 "data_dir": str(tmp_path / "d")},
                                        "train": {"seed": seed},
                                        "tracking": {"tracking_uri": tracking_uri}}))
        train_pipeline(config=cfg)
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("stockcast")
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp.experiment_id])
    names = [r.info.run_name for r in runs]
    assert len(set(names)) == 2 and all(n.startswith("GOOG ") for n in names), names
    # What differs from the defaults comes first (a truncated column still shows it).
    assert all(n.index("sequence_length=10") < n.index(" · 20") for n in names), names
    note = runs[0].data.tags["mlflow.note.content"]
    assert "persistence" in note and "Duration" in note and "train_seconds" in note
    mv = client.get_model_version("stockcast-GOOG", "2")
    assert "p =" in mv.description


def test_live_monitoring_scores_yesterdays_forecast_and_flags_a_planted_drift(project, capsys):
    import pandas as pd

    from stockcast.data.files import read_price_file, sample_path

    history = read_price_file(sample_path("GOOG"))
    path = project / "goog.csv"
    cfg = write_cfg(project, monitor={"window": 3})

    def forecast_through(frame):
        frame.to_csv(path, index=False)
        assert main(["forecast", "--config", cfg, "--csv", str(path), "--ticker", "GOOG"]) == 0
        return capsys.readouterr()

    forecast_through(history.iloc[:-5])
    forecast_through(history.iloc[:-4])  # a day later: yesterday's forecast is scored
    client = MlflowClient(store_uri(project))
    exp = client.get_experiment_by_name("stockcast-forecasts")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    assert runs[0].data.metrics["live_scored"] == 1
    assert runs[0].data.tags["data.end"] == str(history["Date"].iloc[-5].date())
    assert runs[0].data.tags["data.source"] == "csv" and runs[0].data.tags["monitor.drift"] == "none"
    # Named by the day forecast; the forecast itself as metrics, one step per horizon day.
    run = runs[0]
    assert run.info.run_name.startswith(f"GOOG for {history['Date'].iloc[-4].date()} (v1) · ")
    uppers = client.get_metric_history(run.info.run_id, "upper_95")
    assert sorted(m.step for m in uppers) == list(range(1, len(uppers) + 1))
    assert run.data.metrics["last_close"] == pytest.approx(history["Close"].iloc[-5], rel=1e-9)
    assert run.data.metrics["lower_95"] < run.data.metrics["forecast"] < run.data.metrics["upper_95"]

    # Plant drift: the next days jump 20 % each, far outside every interval.
    shocked = history.iloc[:-4].copy()
    for _ in range(3):
        last = shocked.iloc[-1].copy()
        last["Date"] = last["Date"] + pd.offsets.BDay(1)
        for col in ("Open", "High", "Low", "Close"):
            last[col] = last[col] * 1.2
        shocked = pd.concat([shocked, last.to_frame().T], ignore_index=True)
        out = forecast_through(shocked)
    assert "DRIFT" in out.err + out.out
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])
    assert "range CUSUM" in runs[0].data.tags["monitor.drift"]
    # The range was standardised on the champion's own test span, and the run says so.
    assert runs[0].data.tags["monitor.statistic"].startswith(
        "range CUSUM (reference: v1's test span, ")
    assert runs[0].data.metrics["live_cusum"] > runs[0].data.metrics["live_cusum_threshold"]
    zone, n = runs[0].data.tags["monitor.basel_zone"], runs[0].data.metrics["live_tail_forecasts"]
    assert zone in {"green", "yellow", "red"} if n >= 20 else zone.startswith(f"too few: {n:.0f} ")
    # Both bands' coverage CUSUMs are watched and recorded.
    assert {"live_band80_cusum", "live_band95_cusum"} <= set(runs[0].data.metrics)
    # What the adaptive calibration did is on the forecast's run, per step.
    assert runs[0].data.metrics["adapted_on"] > 0 and runs[0].data.metrics["band_ratio_95"] > 0


def start_model_server(project, *options: str):
    """`stockcast serve-model --ticker GOOG` on a free port, once it answers /ping."""
    import os
    import subprocess
    import sys

    port = free_port()
    venv_bin = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}",
           "MLFLOW_TRACKING_URI": store_uri(project)}
    proc = subprocess.Popen([os.path.join(venv_bin, "stockcast"), "serve-model", "--ticker",
                             "GOOG", "--port", str(port), *options], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/ping", proc)
    return proc, url


def test_the_champion_as_a_rest_service_takes_a_csv_frame(project):
    import os

    import pandas as pd
    import requests

    from stockcast.data.files import read_price_file, sample_path

    # As `make serve-model` runs it: the project's server (MLflow's scoring app behind the
    # request bound and the CSV reader), here with a 1 MB bound.
    proc, url = start_model_server(project, "--max-request-mb", "1")
    try:
        # As users have it: Date as text, unadjusted Close beside Adj Close (GOOG split 2:1).
        frame = pd.read_csv(sample_path("GOOG")).tail(100)
        # What `stockcast forecast --csv` feeds the same champion: the pipeline's reading.
        import mlflow

        mlflow.set_tracking_uri(store_uri(project))
        champion = mlflow.pyfunc.load_model("models:/stockcast-GOOG@champion")
        expected = champion.predict(read_price_file(sample_path("GOOG")).tail(100))
        for payload in (frame, frame.drop(columns=["Date"])):
            body = {"dataframe_split": payload.to_dict(orient="split")}
            answer = requests.post(f"{url}/invocations", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            row = answer.json()["predictions"][0]
            assert row["lower_95"] < row["forecast"] < row["upper_95"]
            assert row["forecast"] == pytest.approx(expected["forecast"].iloc[0], rel=1e-9)
            assert row["upper_95"] == pytest.approx(expected["upper_95"].iloc[0], rel=1e-9)
            assert ("date" in row) == ("Date" in payload.columns)
        negative = frame.assign(Close=-frame["Close"], **{"Adj Close": -frame["Adj Close"]})
        for bad in (negative, frame.iloc[::-1]):
            body = {"dataframe_split": bad.to_dict(orient="split")}
            answer = requests.post(f"{url}/invocations", json=body, timeout=30)
            assert answer.status_code >= 400, answer.text[:300]
            assert "Close" in answer.text or "Date" in answer.text
        # NaN in the middle of the window, NaN as the last close, Infinity: refused, never a
        # plausible-looking 200 (sent as JSON's NaN / Infinity literals, as clients do).
        import json as jsonlib

        for row, value in ((-30, float("nan")), (-1, float("nan")), (-5, float("inf"))):
            bad = frame.copy()
            bad.iloc[row, bad.columns.get_loc("Close")] = value
            bad.iloc[row, bad.columns.get_loc("Adj Close")] = value
            data = jsonlib.dumps({"dataframe_split": bad.to_dict(orient="split")})
            answer = requests.post(f"{url}/invocations", data=data, timeout=30,
                                   headers={"Content-Type": "application/json"})
            assert answer.status_code >= 400, (row, value, answer.text[:300])
        # Every refusal starts with the project's one line; CSV bodies as users export them.
        for bad, reason in ((frame.tail(10), "need at least"),
                            (frame.drop(columns=["Close", "Adj Close"]), "input lacks column")):
            body = {"dataframe_split": bad.to_dict(orient="split")}
            answer = requests.post(f"{url}/invocations", json=body, timeout=30)
            assert answer.status_code == 400 and answer.json()["message"].startswith(reason)
        answer = requests.post(f"{url}/invocations", data=frame.to_csv(index=False), timeout=30,
                               headers={"Content-Type": "text/csv"})
        assert answer.status_code == 200, answer.text[:300]
        assert answer.json()["predictions"][0]["forecast"] == pytest.approx(
            expected["forecast"].iloc[0], rel=1e-9)
        answer = requests.post(f"{url}/invocations", data=b"x" * (2 * 2**20), timeout=30,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 413 and "at most 1,048,576" in answer.json()["message"]
        # SIGTERM (a supervisor's stop) ends the service, its champion-following thread too.
        import signal
        import time

        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        assert time.monotonic() - sent < 10 and code in (0, 143), code
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(30)


def test_forecast_task_runs_are_named_by_ticker(project, prefect_api):
    import asyncio

    from prefect.client.orchestration import get_client

    from flows.forecast import forecast_pipeline

    cfg = build_config(merge(TINY, {"data": {"source": "sample"}}))
    state = forecast_pipeline(config=cfg, return_state=True)
    flow_run_id = state.state_details.flow_run_id

    async def names():
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[flow_run_id])))
            return {r.name for r in runs}

    assert {"ingest-GOOG", "forecast-GOOG", "monitor-GOOG", "log-forecast-GOOG"} <= asyncio.run(names())


def test_tasks_that_never_ran_end_cancelled_in_the_timeline(project, prefect_api):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.train import train_pipeline
    from stockcast.data.files import read_price_file, sample_path

    bad = read_price_file(sample_path("GOOG"))
    bad.loc[200, "Close"] = -1.0  # validation fails: freshness and the cache never run
    path = project / "bad.csv"
    bad.to_csv(path, index=False)
    cfg = build_config(merge(TINY, {"data": {"source": "csv", "csv_path": str(path)}}))
    flow_state = train_pipeline(config=cfg, return_state=True)
    assert flow_state.is_failed()

    async def task_runs():
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id])))

    runs = {r.name: r.state for r in asyncio.run(task_runs())}
    assert runs["validate-GOOG"].is_failed()
    for name in ("freshness-GOOG", "commit-cache-GOOG"):
        assert runs[name].is_cancelled(), (name, runs[name])
        assert runs[name].message.startswith("not run: GOOG failed at validated: ")
        assert "\n" not in runs[name].message
    assert not any(s.is_pending() for s in runs.values()), runs
    # Every bar of the timeline is <stage>-<TICKER>, or the run-wide stage's own name: no
    # random suffix a reader has to decode (`connect-tracking-fa2`).
    import re

    assert "connect-tracking" in runs
    for name in runs:
        assert re.fullmatch(r"[a-z-]+-GOOG|connect-tracking|download-GOOG-and-more", name), name


def test_the_service_follows_a_promotion_without_a_restart(project, capsys):
    import os
    import time

    import requests
    from mlflow.tracking import MlflowClient

    from stockcast.cli import main
    from stockcast.data.files import read_price_file, sample_path

    client = MlflowClient(store_uri(project))
    v1 = client.get_model_version("stockcast-GOOG", "1")
    proc, url = start_model_server(project, "--reload-seconds", "1")
    frame = read_price_file(sample_path("GOOG")).tail(120)
    frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
    body = {"dataframe_split": frame.to_dict(orient="split")}
    try:
        first = requests.post(f"{url}/invocations", json=body, timeout=30)
        assert first.status_code == 200 and first.headers["x-stockcast-model"] == "stockcast-GOOG v1"
        # A second version (the same files), promoted by hand while the service runs.
        client.create_model_version("stockcast-GOOG", v1.source, v1.run_id)
        assert main(["promote", "--ticker", "GOOG", "--version", "2"]) == 0
        capsys.readouterr()
        answered, deadline = [], time.monotonic() + 20
        while not answered or answered[-1] != "stockcast-GOOG v2":
            assert time.monotonic() < deadline, answered
            answer = requests.post(f"{url}/invocations", json=body, timeout=30)
            assert answer.status_code == 200, answer.text[:300]  # no request fails meanwhile
            answered.append(answer.headers["x-stockcast-model"])
            time.sleep(0.2)
        assert set(answered) <= {"stockcast-GOOG v1", "stockcast-GOOG v2"}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
