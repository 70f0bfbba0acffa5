"""Every bad input and fault gets a clear error, a non-zero exit without a traceback, and loses
nothing: the cache, the registry versions and the `champion` alias stay as they were."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import numpy as np
import pytest
from cli_project import cli_process, fails_cleanly, state, store_uri, write_cfg
from helpers import make_prices
from mlflow.tracking import MlflowClient

from stockcast.cli import main
from stockcast.data.files import read_price_file, sample_path

pytestmark = pytest.mark.slow
START = dt.date(2004, 1, 1)  # the bundled GOOG history starts in 2004


# 1 ---------------------------------------------------------------------------------------
def test_unknown_ticker(project, capsys):
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--ticker", "ZZZZ"], project,
                  "ZZZZ", "unknown or delisted")


# 2 ---------------------------------------------------------------------------------------
def test_network_down_is_retried_then_fails_clearly(project, capsys, fake_yf):
    fake_yf.error = ConnectionError("Failed to perform, curl: (6) Could not resolve host")
    cfg = write_cfg(project, data={"retries": 2, "retry_backoff_seconds": 0.01})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "yfinance"], project,
                  "could not reach Yahoo Finance", "GOOG")
    assert len(fake_yf.calls) == 3  # retried with backoff, then gave up


def test_rate_limit_is_retried_then_fails_clearly(project, capsys, fake_yf):
    import yfinance

    fake_yf.error = yfinance.exceptions.YFRateLimitError()
    cfg = write_cfg(project, data={"retries": 1, "retry_backoff_seconds": 0.01})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "yfinance"], project,
                  "rate-limited")
    assert len(fake_yf.calls) == 2


def test_network_down_in_auto_mode_falls_back_to_the_cache_and_records_it(project, capsys,
                                                                           fake_yf):
    fake_yf.error = ConnectionError("Could not resolve host")
    assert main(["run", "--config", write_cfg(project)]) == 0
    out = capsys.readouterr().out
    assert "data: cache" in out
    client = MlflowClient(store_uri(project))
    mv = client.get_model_version("stockcast-GOOG", "2")
    tags = client.get_run(mv.run_id).data.tags
    assert tags["data.source"] == "cache" and "yfinance failed" in tags["data.fallback"]


# 3 ---------------------------------------------------------------------------------------
def test_history_too_short(project, capsys):
    path = project / "short.csv"
    make_prices(25).to_csv(path, index=False)
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                           "--ticker", "GOOG"], project, "need at least", "rows of history")


# 4 ---------------------------------------------------------------------------------------
def _bad(kind: str, frame):
    f = frame.copy()
    if kind == "nan":
        f.loc[50, "Close"] = np.nan
    elif kind == "duplicate":
        f.loc[60, "Date"] = f.loc[59, "Date"]
    elif kind == "unsorted":
        f = f.iloc[::-1]
    elif kind == "negative":
        f.loc[70, "Open"] = -3.0
        f.loc[71, "Close"] = 0.0
    elif kind == "high-low":
        f.loc[80, "High"] = f.loc[80, "Low"] / 2
    elif kind == "missing-column":
        f = f.drop(columns=["High"])
    elif kind == "non-numeric":
        f["Volume"] = f["Volume"].astype(object)
        f.loc[90, "Volume"] = "lots"
    return f


@pytest.mark.parametrize(("kind", "needle"), [
    ("nan", "not_nullable"), ("duplicate", "field_uniqueness"),
    ("unsorted", "strictly increasing"), ("negative", "Open must be > 0"),
    ("high-low", "High must be >= max(Open, Close)"), ("missing-column", "High"),
    ("non-numeric", "coerce"),
])
def test_bad_rows_are_reported_not_dropped(project, capsys, kind, needle):
    path = project / f"{kind}.csv"
    _bad(kind, make_prices(300)).to_csv(path, index=False)
    err = fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                                 "--ticker", "GOOG"], project, "price data is invalid", needle)
    assert "Full report:" in err  # the failure-cases table was saved for the run


def test_malformed_csv(project, capsys):
    path = project / "garbage.csv"
    path.write_bytes(b"\x00\x01\x02garbage\n\xff\xfe;;;\n")
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--csv", str(path),
                           "--ticker", "GOOG"], project, "garbage.csv")


# 5 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "field"), [
    ("train:\n  epochs: -1\n", "train.epochs"),
    ("window:\n  horizon: 0\n", "window.horizon"),
    ("window:\n  train_fraction: 0.5\n", "sum to 1"),
    ("train:\n  device: gpu9\n", "train.device"),
    ("train: [epochs\n", "not valid YAML"),
])
def test_invalid_config_is_rejected_before_any_work(project, capsys, content, field, fake_yf):
    path = project / "bad.yaml"
    path.write_text(content)
    snapshots = len(list((project / "data" / "raw").rglob("*.parquet")))
    fails_cleanly(capsys, ["run", "--config", str(path)], project, field)
    assert fake_yf.calls == []  # nothing was fetched
    assert len(list((project / "data" / "raw").rglob("*.parquet"))) == snapshots


# 6 ---------------------------------------------------------------------------------------
def test_diverging_training_registers_nothing(project, capsys):
    cfg = write_cfg(project, train={"lr": 1e6, "grad_clip": None})
    fails_cleanly(capsys, ["run", "--config", cfg, "--source", "cache"], project,
                  "training diverged", "no model was registered")


# 7 ---------------------------------------------------------------------------------------
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


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_forecast_told_to_stop_ends_within_10_s_and_leaves_the_ledger_readable(
        project, prefect_api, sig, code):
    # `stockcast forecast` stopped mid-flow (a supervisor's SIGTERM, Ctrl-C): it exits within
    # 10 s with the signal's code, the registry and cache untouched, and the forecast ledger
    # readable, with nothing lost (as it was, or with the new forecast), no temporary files.
    import pandas as pd

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


# 8 ---------------------------------------------------------------------------------------
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


# 9 ---------------------------------------------------------------------------------------
def test_corrupt_cache_is_never_used_silently(project, capsys):
    cache = project / "data" / "cache" / "GOOG.parquet"
    cache.write_bytes(cache.read_bytes()[:200])
    fails_cleanly(capsys, ["run", "--config", write_cfg(project), "--source", "cache"], project,
                  "corrupt", "GOOG.parquet")
    # Online, the history is re-fetched and the cache repaired.
    assert main(["run", "--config", write_cfg(project), "--source", "yfinance"]) == 0
    import pandas as pd

    assert len(pd.read_parquet(cache)) == len(read_price_file(sample_path("GOOG")))


# 10 --------------------------------------------------------------------------------------
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
