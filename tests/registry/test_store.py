"""The MLflow retry policy: transient failures only, and retried writes stay idempotent."""

import importlib

import pytest
from helpers import predictable_prices, quality, run_stages
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from stockcast.registry.retries import is_transient, with_retries


def fail_once(monkeypatch, owner, name, exc):
    """Make ``owner.name`` raise ``exc`` on its first call only (the seam: MLflow itself)."""
    real = getattr(owner, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, flaky)
    return calls


def test_retried_logging_and_registration_leave_one_run_and_one_version(
        tmp_path, tracking_uri, monkeypatch):
    # The store drops the connection half-way through logging the model, and again right
    # after the version was registered (before the alias was set).
    logs = fail_once(monkeypatch, importlib.import_module("mlflow.pyfunc"), "log_model",
                     ConnectionError("reset by peer"))
    aliases = fail_once(monkeypatch, MlflowClient, "set_registered_model_alias",
                        ConnectionError("server went away"))
    out = run_stages(predictable_prices(), quality(1), tracking_uri, tmp_path)
    assert len(logs) == 2 and len(aliases) >= 2  # both were retried
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("stockcast")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [out["logged"].run_id]
    versions = client.search_model_versions("name='stockcast-TEST'")
    assert [str(v.version) for v in versions] == ["1"] and out["version"] == "1"
    assert versions[0].run_id == out["logged"].run_id
    assert str(client.get_model_version_by_alias("stockcast-TEST", "champion").version) == "1"


def test_manual_promotion_and_listing_retry_transient_failures(tmp_path, tracking_uri,
                                                               monkeypatch):
    from stockcast.registry.manual_promotion import set_champion
    from stockcast.registry.versions import list_versions

    monkeypatch.setattr("stockcast.registry.retries.BACKOFF_SECONDS", 0.01)
    out = run_stages(predictable_prices(), quality(1), tracking_uri, tmp_path)
    store = out["store"]
    aliases = fail_once(monkeypatch, MlflowClient, "set_registered_model_alias",
                        ConnectionError("server went away"))
    decision = set_champion("stockcast-TEST", "1", store)
    assert len(aliases) == 2 and decision.promote
    assert decision.champion_version == "1"  # the first attempt's reading, kept by the retry
    searches = fail_once(monkeypatch, MlflowClient, "search_model_versions",
                         TimeoutError("read timed out"))
    rows = list_versions("stockcast", "TEST", store)
    assert len(searches) == 2 and [r["version"] for r in rows] == [1]
    assert rows[0]["aliases"] == "challenger,champion"


def test_the_store_owns_mlflows_http_settings(monkeypatch, tracking_uri):
    import os

    from stockcast.registry.store import MlflowStore

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")  # MLflow's default stacks 7
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    MlflowStore(tracking_uri).call("probe", lambda: None)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # ours is the one policy
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"


def test_a_bug_is_not_retried_and_not_reported_as_an_unreachable_store():
    calls = []

    def buggy():
        calls.append(1)
        raise KeyError("test_rmse")

    with pytest.raises(KeyError):
        with_retries("logging", buggy, retries=3)
    assert calls == [1]


def test_transient_errors_are_recognised_by_type():
    import requests
    import sqlalchemy.exc

    try:
        try:
            raise requests.ConnectionError("refused")
        except requests.ConnectionError as inner:
            raise MlflowException(f"API request to http://x failed with exception {inner}")  # noqa: B904
    except MlflowException as wrapped:
        assert is_transient(wrapped)
    busy = sqlalchemy.exc.OperationalError("INSERT", {}, Exception("database is locked"))
    assert is_transient(busy)
    assert is_transient(MlflowException("API request to endpoint /x failed with error code 503",
                                        error_code="TEMPORARILY_UNAVAILABLE"))
    assert not is_transient(MlflowException("Registered Model with name=x not found",
                                            error_code="RESOURCE_DOES_NOT_EXIST"))
    assert not is_transient(MlflowException("bad param", error_code="INVALID_PARAMETER_VALUE"))
    assert not is_transient(ValueError("a bug"))


def test_pointing_mlflow_at_a_store_does_not_leak_into_the_environment(tmp_path, monkeypatch):
    import os

    from stockcast.registry.store import MlflowStore
    from stockcast.runtime import resolve_runtime

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}"
    MlflowStore(first).experiment_id()
    assert "MLFLOW_TRACKING_URI" not in os.environ  # MLflow itself would have set it
    # so the next run in this process (another project home) resolves its own store.
    from stockcast.config import PipelineConfig

    monkeypatch.setenv("STOCKCAST_HOME", str(tmp_path / "b"))
    uri = resolve_runtime(PipelineConfig()).tracking.tracking_uri
    assert str(tmp_path / "b") in uri and first not in uri


def test_a_lock_timeout_names_the_holding_process_and_the_remedy(tmp_path):
    import subprocess
    import sys
    import time

    from stockcast.errors import RegistryError
    from stockcast.registry.locks import held

    path = tmp_path / "promotion.lock"
    code = ("import sys, time; from pathlib import Path; from stockcast.registry.locks import held\n"
            f"with held(Path({str(path)!r}), 'test'):\n"
            "    print('held', flush=True); time.sleep(30)")
    holder = subprocess.Popen([sys.executable, "-c", code, "nightly-run"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(RegistryError) as err, held(path, "promotion of GOOG", timeout=0.5):
            pass
        assert time.monotonic() - start < 10
        message = str(err.value)
        assert f"process {holder.pid} on " in message and "nightly-run" in message
        assert "promotion of GOOG" in message and f"delete {path}" in message
    finally:
        holder.kill()
        holder.wait()
    with held(path, "promotion of GOOG", timeout=5):  # a dead holder's lock is free again
        pass


def test_a_copied_home_writes_into_itself_and_reads_its_own_artifacts(tmp_path):
    """The embedded store records absolute artifact paths; a copy of the home would write its
    new runs, and read the champion's evaluation fit, in the original. Opened in its new place,
    it points them at its own folder and leaves the original alone."""
    import shutil
    from pathlib import Path
    from urllib.parse import urlparse

    first, copy = tmp_path / "home", tmp_path / "copied"
    uri = f"sqlite:///{first / 'mlflow' / 'mlflow.db'}?timeout=30"
    run_stages(predictable_prices(), quality(1), uri, first)
    shutil.copytree(first, copy)
    before = sorted(p for p in (first / "mlflow" / "artifacts").rglob("*"))
    copied_uri = f"sqlite:///{copy / 'mlflow' / 'mlflow.db'}?timeout=30"
    again = run_stages(predictable_prices(), quality(1), copied_uri, copy)
    client = MlflowClient(copied_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 2
    for run in runs:
        assert Path(urlparse(run.info.artifact_uri).path).is_relative_to(copy / "mlflow")
    for mv in client.search_model_versions("name='stockcast-TEST'"):
        location = client.get_model_version_download_uri("stockcast-TEST", mv.version)
        assert str(copy / "mlflow") in location
    assert again["decision"].evidence.startswith("champion's evaluation fit re-scored")
    assert sorted(p for p in (first / "mlflow" / "artifacts").rglob("*")) == before


def test_two_stores_in_one_process_each_keep_their_own_state(tmp_path):
    # What a store learns (its client, the schema check, experiment ids) lives on the store:
    # two stores in one process never answer from each other's, and the fluent API follows
    # the store that calls.
    import pickle

    import mlflow

    from stockcast.registry.store import MlflowStore

    a, b = (MlflowStore(f"sqlite:///{tmp_path / name / 'mlflow.db'}") for name in ("a", "b"))
    b.experiment_id("other")  # b's store gets one more experiment, so the ids differ
    ids = {s: s.experiment_id() for s in (a, b)}
    assert ids[a] != ids[b]
    assert a.client is a.client and a.client is not b.client
    for store in (a, b, a):
        run_id = store.log_run("logging", "probe", lambda rid: rid)
        assert mlflow.get_tracking_uri() == store.tracking_uri
        assert store.client.get_run(run_id).info.experiment_id == ids[store]
    # A copy (a Dask worker's) carries the settings, not the cache, and works on its own.
    copy = pickle.loads(pickle.dumps(a))
    assert copy == a and copy.client is not a.client and copy.experiment_id() == ids[a]


def test_a_run_artifact_is_read_from_the_run_s_location_or_is_none(tmp_path, monkeypatch):
    # What promotion and the warm start read back (the configuration, the evaluation fit):
    # the artifact's bytes by run id or by the record already read (which is not read again,
    # as MLflow's runs:/ download did twice per file); None for a file the run lacks (a run of
    # an older stockcast) and for a run the store does not have.
    import mlflow

    from stockcast.registry.store import MlflowStore

    store = MlflowStore(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (tmp_path / "config.yaml").write_text("window: {}\n")

    def log(run_id: str) -> str:
        mlflow.log_artifact(str(tmp_path / "config.yaml"), artifact_path="config")
        return run_id

    run = store.client.get_run(store.log_run("logging", "probe", log))
    reads = fail_once(monkeypatch, MlflowClient, "get_run", AssertionError("read again"))
    assert store.run_artifact(run, "config/config.yaml") == b"window: {}\n"
    assert store.run_artifact(run, "evaluation_fit/lstm.pkl") is None
    assert store.run_artifact(run, "config/other.yaml") is None
    assert reads == []  # the record was enough
    monkeypatch.undo()
    assert store.run_artifact(run.info.run_id, "config/config.yaml") == b"window: {}\n"
    assert store.run_artifact("0" * 32, "config/config.yaml") is None
