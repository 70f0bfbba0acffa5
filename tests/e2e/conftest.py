"""End-to-end fixtures: one Prefect test server for the whole session, shared with the CLI
subprocesses that the reliability tests start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A temporary Prefect server (prefect_test_harness) for this session; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


@pytest.fixture
def project(tmp_path, prefect_api) -> Path:
    """An empty project root (data/, mlflow/, logs/ land here) for CLI runs."""
    root = tmp_path / "project"
    root.mkdir()
    return root
