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
from real_servers import migrate_prefect_database

from stockcast.cli import main
from stockcast.data.files import read_price_file, sample_path


def built_once(tmp_path_factory, worker_id: str, name: str, build) -> Path:
    """``build(folder)`` run once per test run: the first test process to need ``name`` builds
    it, holding a lock the others wait on, and they all reuse it (pytest-xdist's recipe for a
    session fixture shared between processes). Returns the folder; read-only to its users."""
    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # every process's base temp is in the run's own folder
        shared = shared.parent
    root = shared / name
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / f"{name}.built").exists():
            shutil.rmtree(root, ignore_errors=True)  # a process that failed half-way
            root.mkdir(parents=True)
            build(root)
            (shared / f"{name}.built").touch()
    return root


@pytest.fixture(scope="session")
def migrated_prefect_db(tmp_path_factory, worker_id) -> Path:
    """A SQLite file with Prefect's schema at head, copied into each test's Prefect server."""
    return built_once(tmp_path_factory, worker_id, "prefect-db", migrate_prefect_database
                      ) / "prefect.db"


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory, migrated_prefect_db) -> str:
    """A temporary Prefect server (prefect_test_harness) for this session; yields its API URL.
    Its database starts as a copy of the migrated one (the harness puts it in a fresh
    ``mkdtemp()`` folder; Prefect is pinned, and were that name to go the patch fails), and so
    does the one in PREFECT_HOME, where a CLI run in Prefect's local mode (no PREFECT_API_URL)
    starts its temporary server."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    shutil.copyfile(migrated_prefect_db, home / "prefect.db")
    import prefect.testing.utilities as harness
    from prefect.settings import PREFECT_API_URL

    database = tmp_path_factory.mktemp("prefect-harness-db")
    shutil.copyfile(migrated_prefect_db, database / "prefect-test.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(harness, "mkdtemp", lambda: str(database))
        with harness.prefect_test_harness(server_startup_timeout=180):
            yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def baseline(prefect_api, tmp_path_factory, worker_id) -> Path:
    """A project whose cache holds GOOG (fetched through the mocked yfinance) and whose
    registry has stockcast-GOOG v1 as champion. Read-only (``project`` copies it), so built
    once per test run."""
    return built_once(tmp_path_factory, worker_id, "baseline", _build_baseline)


def _build_baseline(root: Path) -> None:
    import yfinance

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
