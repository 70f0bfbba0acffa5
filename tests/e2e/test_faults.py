"""Faults around a run, through the real CLI, flow and processes: a diverging fit, SIGKILL,
SIGTERM and Ctrl-C, two runs or first runs at once, a store that is half-migrated, read-only or
unreachable, a changed horizon, model files missing, corrupt or unsigned. Each ends with a clear
message and loses nothing: the cache, the registry and the champion stay as they were."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest
from cli_project import cli_process, fails_cleanly, state, store_uri, write_cfg
from helpers import error_raised_while_handling
from mlflow.tracking import MlflowClient

from stockcast.cli import main

pytestmark = pytest.mark.slow


def _configure(uri: str, queue) -> None:
    from stockcast.registry.store import MlflowStore

    try:
        queue.put(MlflowStore(uri).experiment_id())
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(f"{type(exc).__name__}: {exc}")


def start_a_long_training(project):
    """`stockcast run` of 500 epochs in Prefect's local mode (the run starts its own temporary
    server), returned once its first epoch is done (and what it said)."""
    import subprocess
    import sys

    slow = write_cfg(project, train={"epochs": 500, "patience": 500},
                     model={"hidden_size": 64, "num_layers": 2})
    # -v: the trainer's first epoch line (quiet by default) tells when training has started.
    args = ("-v", "run", "--config", slow, "--source", "cache")
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL",
                                                            "MLFLOW_TRACKING_URI")}
    proc = subprocess.Popen([sys.executable, "-m", "stockcast.cli", *args], cwd=project,
                            env={**env, "STOCKCAST_HOME": str(project), "PYTHONUNBUFFERED": "1"},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        seen.append(line)
        if "epoch 1/500" in line:
            break
        assert time.monotonic() < deadline, "".join(seen)
    return proc, seen


def test_diverging_training_registers_nothing(project, capsys):
    cfg = write_cfg(project, train={"lr": 1e6, "grad_clip": None})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "cache"], project,
                  "training diverged", "no model was registered")


def test_sigkill_mid_training_loses_nothing_and_leaves_no_server_behind(project, prefect_api):
    """`kill -9` on a run in Prefect's local mode, which no handler sees: the store and the
    cache are as they were, the temporary server it started does not live on orphaned (it
    did), and the next run succeeds."""
    import psutil

    before = state(project)
    proc, seen = start_a_long_training(project)
    servers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "prefect.server.api.server:create_app" in " ".join(p.cmdline())]
    assert len(servers) == 1, "".join(seen)
    time.sleep(2)
    proc.kill()  # the run alone, not its process group
    proc.wait(timeout=30)
    _, alive = psutil.wait_procs(servers, timeout=15)
    for orphan in alive:  # never leave one behind, even when the test fails
        orphan.kill()
    assert not alive, "the temporary Prefect server outlived the killed run"
    assert state(project) == before
    # No half-written files in the cache.
    assert not list((project / "data" / "cache").glob(".*tmp"))
    after = cli_process(project, prefect_api, "run", "--config", write_cfg(project), "--source", "cache")
    out, _ = after.communicate(timeout=300)
    assert after.returncode == 0, out
    models, _ = state(project)
    assert models["stockcast-GOOG"][0] == ["1", "2"]


def test_sigterm_in_local_mode_ends_the_run_and_its_temporary_server_within_10_s(project):
    # SIGTERM is what process supervisors send (Prefect's cancellation: tests/e2e/test_servers).
    # In Prefect's local mode (no PREFECT_API_URL, as `make run-flow` runs) the run starts its
    # own temporary server; SIGTERM mid-training ends the run at the next mini-batch (it used
    # to train on to the last epoch) and that server within 10 s (the target), exits 143,
    # says why, registers nothing and leaves the cache as it was.
    import psutil

    before = state(project)
    proc, seen = start_a_long_training(project)
    servers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "prefect.server.api.server:create_app" in " ".join(p.cmdline())]
    assert len(servers) == 1, "".join(seen)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    run_gone = time.monotonic() - sent
    _, alive = psutil.wait_procs(servers, timeout=max(0.1, 10 - run_gone))
    all_gone = time.monotonic() - sent
    for orphan in alive:  # never leave one behind, even when the test fails
        orphan.kill()
    assert not alive, f"the temporary Prefect server outlived the run by 10 s: {rest[-2000:]}"
    assert all_gone < 10, f"run and server ended {all_gone:.1f} s after SIGTERM"
    assert proc.returncode == 143 and "stopped by SIGTERM" in rest, rest
    assert "RunStopped" not in rest.splitlines()[-1]  # one line, not a traceback
    assert state(project) == before
    assert not list((project / "data" / "cache").glob(".*tmp"))


@pytest.mark.parametrize(("stop", "code", "said"), [("SIGTERM", 143, "stopped by SIGTERM"),
                                                    ("Ctrl-C", 130, "stopped by Ctrl-C")])
def test_a_stop_that_prefect_turns_into_another_error_still_ends_the_forecast_as_stopped(
        project, prefect_api, monkeypatch, capsys, stop, code, said):
    # A SIGTERM (Prefect's TerminationSignal) or a Ctrl-C (KeyboardInterrupt) that lands
    # before a task's run exists reaches the flow as Prefect's "Task run is not set" (the
    # signal in its chain): the command ends stopped (143, 130), not "no forecast for GOOG"
    # (1), as it did in timing-dependent runs of the test below (SIGTERM in session 14, Ctrl-C
    # in session 15's second clean-clone CI).
    from prefect.exceptions import TerminationSignal

    import flows.forecast
    from stockcast import stopping

    signal_exc = (TerminationSignal(signal=signal.SIGTERM) if stop == "SIGTERM"
                  else KeyboardInterrupt())

    def interrupted(*args, **kwargs):
        raise error_raised_while_handling(signal_exc)

    monkeypatch.setattr(flows.forecast, "forecast_ticker", interrupted)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        returned = main(["forecast", "--ticker", "GOOG", "--source", "cache"])
    finally:
        for sig, handler in handlers.items():  # main() installs the CLI's own
            signal.signal(sig, handler)
        stopping.clear()
    err = capsys.readouterr().err
    assert returned == code and said in err, err
    assert "no forecast" not in err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_forecast_told_to_stop_ends_within_10_s_and_leaves_the_ledger_readable(
        project, prefect_api, sig, code):
    # `stockcast forecast` stopped mid-flow (a supervisor's SIGTERM, Ctrl-C): it exits within
    # 10 s with the signal's code, the registry and cache untouched, and the forecast ledger
    # readable, with nothing lost (as it was, or with the new forecast), no temporary files.

    ledger = project / "forecasts" / "GOOG" / "ledger.parquet"
    before, rows = state(project), len(pd.read_parquet(ledger)) if ledger.exists() else 0
    proc = cli_process(project, prefect_api, "-v", "forecast", "--ticker", "GOOG",
                       "--source", "cache")
    seen = []
    for line in proc.stdout:  # the flow has begun: its first task runs
        seen.append(line)
        if "ingest-GOOG" in line:
            break
    assert proc.poll() is None, "".join(seen)
    sent = time.monotonic()
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 10, "".join(seen) + rest
    assert proc.returncode == code, rest
    assert state(project) == before
    after = len(pd.read_parquet(ledger)) if ledger.exists() else 0  # readable
    assert after >= rows, (rows, after)  # nothing lost
    assert not list(ledger.parent.glob("*.tmp*"))


def test_two_runs_at_once_leave_one_consistent_champion(project, prefect_api):

    a = cli_process(project, prefect_api, "run", "--config",
             write_cfg(project, train={"epochs": 1, "seed": 1}), "--source", "cache")
    b = cli_process(project, prefect_api, "run", "--config",
             write_cfg(project.parent, train={"epochs": 4, "seed": 2}), "--source", "cache")
    outs = [p.communicate(timeout=400)[0] for p in (a, b)]
    assert a.returncode == 0 and b.returncode == 0, outs
    client = MlflowClient(store_uri(project))
    versions, aliases = state(project)[0]["stockcast-GOOG"]
    assert versions == ["1", "2", "3"] and list(aliases).count("champion") == 1
    # Decisions were taken one at a time: the champion is the last version promoted, and every
    # version decided after it was refused.
    decided = sorted((client.get_model_version("stockcast-GOOG", v) for v in versions),
                     key=lambda mv: mv.tags["promotion.decided_at"])
    promoted = [mv for mv in decided if mv.tags["promotion.promote"] == "True"]
    assert promoted and aliases["champion"] == str(promoted[-1].version)
    after = decided[decided.index(promoted[-1]) + 1:]
    assert all(mv.tags["promotion.promote"] == "False" for mv in after)


def test_concurrent_first_runs_create_one_healthy_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}?timeout=30"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_configure, args=(uri, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(60)
    assert len(set(results)) == 1 and results[0].isdigit(), results  # one experiment id
    client = MlflowClient(uri)
    assert client.get_experiment_by_name("stockcast").tags["mlflow.experimentKind"] == \
        "custom_model_development"


def test_a_half_migrated_store_is_repaired(project):
    db = project / "mlflow" / "mlflow.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE _alembic_tmp_latest_metrics AS SELECT * FROM latest_metrics")
    con.commit()
    con.close()
    before = state(project)
    assert main(["models"]) == 0  # opens the store: repaired, nothing lost
    assert state(project) == before
    with sqlite3.connect(db) as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert not any(n.startswith("_alembic_tmp_") for n in names)


def test_a_read_only_store_fails_before_training(project):
    db = project / "mlflow" / "mlflow.db"
    before = state(project)
    for path in [db, db.parent, db.parent / "artifacts"]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    try:
        code = (
            "import os, sys\n"
            "from pathlib import Path\n"
            "from stockcast.registry.sqlite_upkeep import check_writable\n"
            "if os.geteuid() == 0:\n"
            "    os.setgid(65534); os.setuid(65534)  # root writes anything: test as nobody\n"
            f"check_writable(Path({str(db)!r}))\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    finally:
        for path in [db, db.parent, db.parent / "artifacts"]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert out.returncode != 0 and "cannot be written" in out.stderr, out.stderr
    assert "nothing was trained" in out.stderr
    assert state(project) == before


def test_unreachable_tracking_server_fails_fast_and_promotes_nothing(project, capsys,
                                                                      monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    cfg = write_cfg(project, tracking={"max_retries": 1})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "cache", "--tracking-uri",
                           f"http://127.0.0.1:{port}"], project,
                  "MLflow connection failed after 2 attempt(s)", "nothing was promoted")
    assert time.monotonic() - started < 90


def test_a_horizon_change_is_refused_cleanly(project, capsys):
    # An h=3 champion (promoted by hand), then the nightly h=1 run.
    assert main(["run", "--config", write_cfg(project, window={"horizon": 3}),
                 "--source", "cache"]) == 0
    assert main(["promote", "--ticker", "GOOG", "--version", "2"]) == 0
    client = MlflowClient(store_uri(project))
    champion = str(client.get_model_version_by_alias("stockcast-GOOG", "champion").version)
    assert champion == "2"
    assert main(["run", "--config", write_cfg(project), "--source", "cache"]) == 0
    out = capsys.readouterr().out
    assert "allow_horizon_change" in out and "Traceback" not in out
    assert str(client.get_model_version_by_alias("stockcast-GOOG", "champion").version) == champion
    newest = max(client.search_model_versions("name='stockcast-GOOG'"), key=lambda v: int(v.version))
    assert newest.tags["promotion.promote"] == "False"  # fully registered, decision recorded


def test_a_champion_without_model_files_names_the_version(project, capsys):
    client = MlflowClient(store_uri(project))
    empty = project / "hand-registered"
    empty.mkdir()
    mv = client.create_model_version("stockcast-GOOG", source=str(empty))
    client.set_registered_model_alias("stockcast-GOOG", "champion", mv.version)
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project,
                  f"stockcast-GOOG v{mv.version} (the champion) has no model files",
                  "stockcast promote")


def test_a_champion_whose_model_file_is_corrupt_names_the_version_file_and_remedy(
        project, capsys):
    """No key, nothing verified: the pickle itself is broken. The forecast refuses with the
    version, the file and what to do; the registry is left as it was."""
    from urllib.parse import urlparse

    client = MlflowClient(store_uri(project))
    champion = client.get_model_version_by_alias("stockcast-GOOG", "champion")
    broken = project / "broken-model"
    shutil.copytree(urlparse(client.get_model_version_download_uri(
        "stockcast-GOOG", champion.version)).path, broken)
    (broken / "python_model.pkl").write_bytes(b"\x80\x04 truncated")
    mv = client.create_model_version("stockcast-GOOG", source=str(broken))
    client.set_registered_model_alias("stockcast-GOOG", "champion", mv.version)
    try:
        fails_cleanly(capsys, ["forecast", "--source", "cache"], project,
                      f"stockcast-GOOG v{mv.version} (the champion) cannot be loaded",
                      "python_model.pkl", "stockcast promote --ticker GOOG --version N")
    finally:
        client.set_registered_model_alias("stockcast-GOOG", "champion", champion.version)


def test_with_a_key_only_signed_champions_are_loaded(project, capsys, monkeypatch):
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "team-secret")
    assert main(["run", "--config", write_cfg(project), "--source", "cache"]) == 0
    client = MlflowClient(store_uri(project))
    signed = max(client.search_model_versions("name='stockcast-GOOG'"), key=lambda v: int(v.version))
    assert client.get_run(signed.run_id).data.tags["stockcast.model_hmac"]
    # The unsigned champion's evaluation fit was not unpickled: compared on its logged table.
    assert "not signed" in signed.tags["promotion.evidence"]
    assert main(["promote", "--ticker", "GOOG", "--version", str(signed.version)]) == 0
    assert main(["forecast", "--source", "cache"]) == 0  # signed with this key: loads
    capsys.readouterr()

    # v1 was logged without a key (as anyone with write access to the store could log one).
    assert main(["promote", "--ticker", "GOOG", "--version", "1"]) == 0
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project, "not signed",
                  "refusing to load")
    monkeypatch.setenv("STOCKCAST_MODEL_KEY", "another-key")
    assert main(["promote", "--ticker", "GOOG", "--version", str(signed.version)]) == 0
    fails_cleanly(capsys, ["forecast", "--source", "cache"], project, "signature mismatch")
    stored = (project / "mlflow" / "mlflow.db").read_bytes()
    assert b"team-secret" not in stored and b"another-key" not in stored


def test_the_dask_dashboard_listens_on_loopback_only():
    from flows.train import task_runner_for
    from stockcast.config import PipelineConfig

    runner = task_runner_for(PipelineConfig.model_validate({"orchestration": {"task_runner": "dask"}}))
    assert runner.cluster_kwargs["dashboard_address"].startswith("127.0.0.1:")
