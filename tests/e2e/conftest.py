"""End-to-end fixtures: one Prefect test server for the whole session, shared with the CLI
subprocesses that the reliability tests start (through PREFECT_API_URL)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from cli_project import state, write_cfg
from helpers import FakeTicker

from stockcast.cli import main
from stockcast.data.files import read_price_file, sample_path


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A temporary Prefect server (prefect_test_harness) for this session; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def baseline(prefect_api, tmp_path_factory, worker_id) -> Path:
    """A project whose cache holds GOOG (fetched through the mocked yfinance) and whose
    registry has stockcast-GOOG v1 as champion. Read-only (``project`` copies it), so built
    once per test run: the first test process to need it builds it, holding a lock the others
    wait on (pytest-xdist's recipe for a session fixture shared between processes)."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # every process's base temp is in the run's own folder
        shared = shared.parent
    root = shared / "baseline"
    with open(shared / "baseline.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "baseline.built").exists():
            shutil.rmtree(root, ignore_errors=True)  # a process that failed half-way
            _build_baseline(root)
            (shared / "baseline.built").touch()
    return root


def _build_baseline(root: Path) -> None:
    import yfinance

    root.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yfinance, "Ticker", FakeTicker)
        mp.setenv("STOCKCAST_HOME", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        FakeTicker.frames = {"GOOG": read_price_file(sample_path("GOOG"))}
        FakeTicker.error = None
        assert main(["run", "--config", write_cfg(root), "--source", "yfinance"]) == 0
    models, cache = state(root)
    assert models["stockcast-GOOG"][1]["champion"] == "1" and "GOOG.parquet" in cache


@pytest.fixture
def project(baseline, tmp_path, monkeypatch, fake_yf) -> Path:
    root = tmp_path / "project"
    shutil.copytree(baseline, root)
    monkeypatch.setenv("STOCKCAST_HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    fake_yf.frames["GOOG"] = read_price_file(sample_path("GOOG"))
    return root
