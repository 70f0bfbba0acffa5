"""End-to-end fixtures: one Prefect test server for the whole session, shared with the CLI
subprocesses that the reliability tests start (through PREFECT_API_URL)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory) -> str:
    """A temporary Prefect server (prefect_test_harness) for this session; yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()
