"""Logging one training run to MLflow: params, metrics, artifacts, lineage, the model."""

from __future__ import annotations

import logging
import pickle
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.entities import Metric
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from stockcast.errors import RegistryError

log = logging.getLogger(__name__)
T = TypeVar("T")

# Explicit requirements: MLflow otherwise infers them by importing the model (slow, ~10 s).
PIP_REQUIREMENTS = ["stockcast", "torch==2.13.0", "pandas==3.1.1", "numpy==2.4.6",
                    "scikit-learn==1.9.1", "mlflow==3.17.2"]


def default_tracking_uri(project_root: Path) -> str:
    """The embedded store: SQLite at mlflow/mlflow.db (absolute path), busy timeout 30 s."""
    db = (Path(project_root) / "mlflow" / "mlflow.db").resolve()
    return f"sqlite:///{db}?timeout=30"


def artifact_root_for(tracking_uri: str) -> str | None:
    """Where a new experiment stores artifacts: mlflow/artifacts beside a SQLite store;
    None (the server's default) for a remote tracking server."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def with_retries(what: str, fn: Callable[[], T], retries: int, delay: float = 1.0) -> T:
    """Call ``fn``; on failure retry ``retries`` times with backoff, then raise RegistryError."""
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= retries:
                raise RegistryError(
                    f"MLflow {what} failed after {attempt + 1} attempt(s): "
                    f"{type(exc).__name__}: {str(exc)[:300]}. Check that the tracking store "
                    f"({mlflow.get_tracking_uri()}) is reachable; nothing was promoted."
                ) from exc
            log.warning("MLflow %s failed (%s); retrying", what, exc)
            time.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")


def configure_tracking(tracking_uri: str, experiment: str, retries: int = 3) -> str:
    """Point MLflow at the store and make sure the experiment exists; returns its id."""
    mlflow.set_tracking_uri(tracking_uri)
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])
        db.parent.mkdir(parents=True, exist_ok=True)

    def ensure() -> str:
        client = MlflowClient(tracking_uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is not None:
            return exp.experiment_id
        try:
            return client.create_experiment(experiment, artifact_location=artifact_root_for(
                tracking_uri))
        except Exception:
            # Another pipeline created it meanwhile.
            exp = client.get_experiment_by_name(experiment)
            if exp is None:
                raise
            return exp.experiment_id

    return with_retries("connection", ensure, retries)


def git_commit(cwd: Path | None = None) -> str:
    """The current git commit (with -dirty), or 'unknown' outside a checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except Exception:
        return "unknown"


@dataclass(frozen=True)
class LoggedRun:
    """Where a run and its model landed."""

    run_id: str
    model_uri: str
    experiment_id: str


def log_training_run(retries: int = 3, **run: Any) -> LoggedRun:
    """Log everything one ticker's run produced and its model (pyfunc + pytorch flavours),
    retrying when the tracking store does not answer. ``run`` holds ``_log``'s arguments."""

    def do_log() -> LoggedRun:
        with warnings.catch_warnings():
            # MLflow hints about integer columns and ambiguous local sources: noise here.
            warnings.simplefilter("ignore", UserWarning)
            return _log(**run)

    return with_retries("logging", do_log, retries)


def _log(
    *,
    experiment_id: str,
    ticker: str,
    params: dict[str, Any],
    tags: dict[str, str],
    history: list[dict[str, float]],
    metrics: dict[str, float],
    frame: pd.DataFrame,
    data_source: str,
    artifacts: list[tuple[str, Path]],  # (MLflow folder, local file or folder)
    config_yaml: str,
    python_model: Any,
    torch_model: torch.nn.Module,
    example_input: np.ndarray,
    transformer: Any,
) -> LoggedRun:
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{ticker}") as run:
        mlflow.set_tags(tags)
        mlflow.log_params({k: ("" if v is None else v) for k, v in params.items()})
        # Per-epoch step metrics in one batch call, not one round trip per value.
        now = int(time.time() * 1000)
        MlflowClient().log_batch(run.info.run_id, metrics=[
            Metric(key, float(value), now, step)
            for step, epoch_metrics in enumerate(history, start=1)
            for key, value in epoch_metrics.items()
        ])
        mlflow.log_metrics(metrics)
        dataset = mlflow.data.from_pandas(frame, source=data_source, targets="Close",
                                          name=f"{ticker}-prices")
        mlflow.log_input(dataset, context="training")
        for folder, path in artifacts:
            if Path(path).is_dir():
                mlflow.log_artifacts(str(path), artifact_path=folder)
            else:
                mlflow.log_artifact(str(path), artifact_path=folder)
        mlflow.log_text(config_yaml, "config/config.yaml")
        with tempfile.TemporaryDirectory() as tmp:
            scaler_path = Path(tmp) / "transformer.pkl"
            scaler_path.write_bytes(pickle.dumps(transformer))
            mlflow.log_artifact(str(scaler_path), artifact_path="scaler")
        # The signature asks only for what the model reads: Date and its raw price columns.
        columns = ["Date", *python_model.transformer.input_columns]
        input_frame = frame[columns].tail(python_model.min_rows + 5).reset_index(drop=True)
        output = python_model.predict(None, input_frame)
        info = mlflow.pyfunc.log_model(
            name="forecaster",
            python_model=python_model,
            signature=infer_signature(input_frame, output),
            input_example=input_frame,
            pip_requirements=PIP_REQUIREMENTS,
        )
        torch_example = example_input[:2]
        torch_info = mlflow.pytorch.log_model(
            torch_model,
            name="lstm",
            signature=infer_signature(
                torch_example, torch_model(torch.as_tensor(torch_example)).detach().numpy()),
            input_example=torch_example,
            pip_requirements=PIP_REQUIREMENTS,
            serialization_format="pickle",
        )
        mlflow.set_tags({"model.pyfunc_uri": info.model_uri, "model.torch_uri": torch_info.model_uri})
        return LoggedRun(run.info.run_id, info.model_uri, experiment_id)
