"""End-to-end fixtures: one Prefect test server for the whole session, shared with the CLI
subprocesses that the reliability tests start (through PREFECT_API_URL)."""

from __future__ import annotations

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
def baseline(prefect_api, tmp_path_factory) -> Path:
    """A project whose cache holds GOOG (fetched through the mocked yfinance) and whose
    registry has stockcast-GOOG v1 as champion."""
    import yfinance

    root = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(yfinance, "Ticker", FakeTicker)
        mp.setenv("STOCKCAST_HOME", str(root))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        FakeTicker.frames = {"GOOG": read_price_file(sample_path("GOOG"))}
        FakeTicker.error = None
        assert main(["run", "--config", write_cfg(root), "--source", "yfinance"]) == 0
    models, cache = state(root)
    assert models["stockcast-GOOG"][1]["champion"] == "1" and "GOOG.parquet" in cache
    return root


@pytest.fixture
def project(baseline, tmp_path, monkeypatch, fake_yf) -> Path:
    root = tmp_path / "project"
    shutil.copytree(baseline, root)
    monkeypatch.setenv("STOCKCAST_HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    fake_yf.frames["GOOG"] = read_price_file(sample_path("GOOG"))
    return root
