"""Shared fixtures: seeded synthetic prices, a tiny fast config, the yfinance seam, stores."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import torch

# Quiet, offline, deterministic defaults for everything the tests start (set before Prefect
# or MLflow read their settings).
os.environ.setdefault("DO_NOT_TRACK", "true")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# Float32 everywhere, in this process and every subprocess it starts (CLI, flows, servers): the
# training tests' tolerances were set in float32, and bf16 CPUs would otherwise train in bf16
# autocast. The bf16 branch has its own tests, which force the capability on any CPU
# (tests/modeling/test_precision.py).
os.environ["STOCKCAST_NO_BF16"] = "1"
torch.set_num_threads(1)

from helpers import (  # noqa: E402
    FakeTicker,
    make_prices,
    prefect_console_on_the_session_stream,
)

pytest_plugins = ["longest_first"]  # module order: tests/longest_first.py

# Loggers the CLI's main() (called in-process by many tests) routes to its own handlers, with
# propagation off: as they were before any test, so caplog sees every test's records whatever
# ran before it in the same process.
ROUTED_LOGGERS = ("stockcast", "mlflow", "yfinance", "alembic", "prefect.flow_runs",
                  "prefect.task_runs")
_PRISTINE = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).filters[:],
                    logging.getLogger(name).propagate, logging.getLogger(name).level)
             for name in ROUTED_LOGGERS}

STRAY_STORE = Path.cwd() / "mlflow.db"  # MLflow 3's default store, were a call to go unpointed
_stray: list[str] = []


def _watch_for_the_default_store(event: str, args: tuple) -> None:
    """Record who opens ./mlflow.db: every store of the project is named explicitly."""
    if event == "sqlite3.connect" and args and Path(str(args[0])).name == "mlflow.db":
        if Path(str(args[0])).resolve() == STRAY_STORE.resolve() and not _stray:
            import traceback

            _stray.append("".join(traceback.format_stack(limit=25)))


def numpy_simd() -> str:
    """The SIMD targets NumPy's loops dispatch to here (NPY_DISABLE_CPU_FEATURES removes some);
    NumPy's own private tables, so "unknown" rather than a failed run if they move."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:
        return "unknown"
    return " ".join(t for t in __cpu_dispatch__ if __cpu_features__.get(t)) or "baseline"


def pytest_report_header(config):
    """Which numerical paths this run takes: CI runs the fast tests on two (.ci/other-cpu)."""
    from threadpoolctl import threadpool_info

    from stockcast.modeling.device import cpu_flags_have_bf16

    blas = [f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()
            if i.get("user_api") == "blas"]
    from postgres_server import REQUIRED, bin_dir

    postgres = bin_dir()
    return [f"numerical paths: BLAS {', '.join(blas) or 'unknown'}; ATen "
            f"{torch.backends.cpu.get_cpu_capability()}; oneDNN "
            f"{os.environ.get('ONEDNN_MAX_CPU_ISA', 'native')}; NumPy {numpy_simd()}; CPU bf16 "
            f"{'yes' if cpu_flags_have_bf16() else 'no'} (tests train in float32)",
            f"PostgreSQL: {postgres or 'not installed'}"
            f"{' (required: STOCKCAST_REQUIRE_POSTGRES=1)' if REQUIRED else ''}"]


def pytest_sessionstart(session):
    session.config.stray_store_existed = STRAY_STORE.exists()
    sys.addaudithook(_watch_for_the_default_store)


def pytest_sessionfinish(session, exitstatus):
    created = STRAY_STORE.exists() and not session.config.stray_store_existed
    if _stray or created:
        session.exitstatus = 1
        print(f"\nFAILED: something opened MLflow's default store {STRAY_STORE}:\n"
              + (_stray[0] if _stray else "(from a subprocess)"), file=sys.stderr)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _loggers_as_before_any_test():
    yield
    prefect_console_on_the_session_stream()
    for name, (handlers, filters, propagate, level) in _PRISTINE.items():
        logger = logging.getLogger(name)
        for handler in logger.handlers:
            if handler not in handlers:
                handler.close()  # the CLI's log file
        logger.handlers[:], logger.filters[:] = handlers, filters
        logger.propagate, logger.level = propagate, level


@pytest.fixture
def prices():
    return make_prices()


@pytest.fixture
def fake_yf(monkeypatch):
    """Patch the yfinance call at its seam (``yfinance.Ticker``), never our own functions."""
    import yfinance

    FakeTicker.frames, FakeTicker.error, FakeTicker.calls = {}, None, []
    monkeypatch.setattr(yfinance, "Ticker", FakeTicker)
    return FakeTicker


@pytest.fixture
def tracking_uri(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store for one test."""
    return f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}?timeout=30"
