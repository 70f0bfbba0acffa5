"""A scratch project home for tests that drive the real CLI: its state (registry versions,
aliases, cache bytes), its config file, and the assertion that a command failed cleanly."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml
from helpers import TINY
from mlflow.tracking import MlflowClient

from stockcast.cli import main
from stockcast.config import merge

START = dt.date(2004, 1, 1)  # the bundled GOOG history starts in 2004


def store_uri(root: Path) -> str:
    return f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"


def state(root: Path) -> tuple[dict, dict]:
    """Registry (versions and aliases per model) and cache (file hashes): what must not change."""
    client = MlflowClient(store_uri(root))
    models = {
        m.name: (sorted(str(v.version) for v in client.search_model_versions(f"name='{m.name}'")),
                 {k: str(v) for k, v in (m.aliases or {}).items()})
        for m in client.search_registered_models()
    }
    cache_dir = root / "data" / "cache"
    cache = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(cache_dir.glob("*"))} if cache_dir.exists() else {}
    return models, cache


def write_cfg(root: Path, **extra) -> str:
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(merge(TINY, merge({"data": {"start": str(START)}}, extra))))
    return str(path)


def fails_cleanly(capsys, args, root, *needles, state_of=state) -> str:
    """Run the CLI; assert exit 1, one message naming the cause, no traceback, nothing lost:
    ``state_of(root)`` (default the registry and the cache) is as it was."""
    before = state_of(root)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert state_of(root) == before
    return err


def cli_process(root: Path, api_url: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "STOCKCAST_HOME": str(root), "PREFECT_API_URL": api_url,
           "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", None)  # set by in-process CLI calls
    return subprocess.Popen([sys.executable, "-m", "stockcast.cli", *args], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def forecast(project, capsys, frame: pd.DataFrame | None = None, source: str = "cache",
             **cfg) -> tuple[int, str]:
    """`stockcast forecast` for GOOG from ``frame`` (as a CSV) or from ``source``."""
    args = ["forecast", "--config", write_cfg(project, **cfg), "--ticker", "GOOG"]
    if frame is None:
        args += ["--source", source]
    else:
        path = project / "prices.csv"
        frame.to_csv(path, index=False)
        args += ["--csv", str(path)]
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


def last_forecast_run(project):
    client = MlflowClient(store_uri(project))
    exp = client.get_experiment_by_name("stockcast-forecasts")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])[0]


def ledger_of(project):
    return project / "forecasts" / "GOOG" / "ledger.parquet"
