"""The MLflow store: where it is, the experiment, MLflow's settings, and every MLflow call under
the one retry policy (``retries``). Built once at the edge (``from_config``) and passed down;
what it caches (the client, the schema check, experiment ids) lives on the instance."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import mlflow
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from stockcast.config import TrackingConfig
from stockcast.errors import RegistryError
from stockcast.registry.locks import held, lock_dir
from stockcast.registry.relocation import relocate_artifacts
from stockcast.registry.retries import is_transient, with_retries
from stockcast.registry.sqlite_upkeep import check_writable, repair_half_migrated
from stockcast.runtime import sqlite_path

log = logging.getLogger(__name__)
T = TypeVar("T")
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def point_mlflow_at(tracking_uri: str) -> None:
    """Set MLflow's global tracking URI (its fluent API needs it) without leaking it into this
    process's environment: MLflow copies it to $MLFLOW_TRACKING_URI, which the next run in the
    same process (another project home) would then read as the user's own choice."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(tracking_uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


def artifact_root_for(tracking_uri: str) -> str | None:
    """Where a new experiment stores artifacts: mlflow/artifacts beside a SQLite store;
    None (the server's default) for a remote tracking server."""
    db = sqlite_path(tracking_uri)
    return (db.parent / "artifacts").resolve().as_uri() if db else None


@dataclass
class _Cache:
    """What a store learns once and keeps: its client, whether its schema was checked, the
    experiment ids it made sure of, whether MLflow's settings were applied."""

    client: MlflowClient | None = None
    opened: bool = False
    experiments: dict[str, str] = field(default_factory=dict)
    settings_applied: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

# MLflow's own HTTP retries off: the store's retry policy is the one retry policy for MLflow
# (stacked under it, MLflow's default would also wait minutes against an unreachable server).
MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
MLFLOW_ENV_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@dataclass(frozen=True)
class MlflowStore:
    """The MLflow boundary: the tracking URI, the experiment, the retry policy and MLflow's
    own settings. Every MLflow call of the project goes through ``call`` (or ``log_run``), so
    transient failures are retried once, the same way, everywhere."""

    tracking_uri: str
    experiment: str = "stockcast"
    max_retries: int = 2
    _cache: _Cache = field(default_factory=_Cache, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        """Pickled (a Dask worker's copy) without the cache: the copy builds its own."""
        return {"tracking_uri": self.tracking_uri, "experiment": self.experiment,
                "max_retries": self.max_retries}

    def __setstate__(self, state: dict) -> None:
        for key, value in {**state, "_cache": _Cache()}.items():
            object.__setattr__(self, key, value)

    @classmethod
    def from_config(cls, cfg: TrackingConfig) -> MlflowStore:
        """The store a (runtime-resolved) tracking section names."""
        if not cfg.tracking_uri:
            raise RegistryError("no MLflow tracking URI: resolve the config (resolve_runtime) "
                                "or pass --tracking-uri")
        return cls(cfg.tracking_uri, cfg.experiment, cfg.max_retries)

    @property
    def client(self) -> MlflowClient:
        """The store's one client (it holds no per-call state; MLflow caches the underlying
        store per URI as well)."""
        with self._cache.lock:
            if self._cache.client is None:
                self._cache.client = MlflowClient(self.tracking_uri)
            return self._cache.client

    def activate(self) -> None:
        """Apply MLflow's settings this project relies on (once) and point MLflow's fluent API
        at this store when it points elsewhere (without leaking the URI into the
        environment): another store in the same process may have moved it."""
        if not self._cache.settings_applied:
            os.environ.update(MLFLOW_ENV)
            for key, value in MLFLOW_ENV_DEFAULTS.items():
                os.environ.setdefault(key, value)
            self._cache.settings_applied = True
        if mlflow.get_tracking_uri() != self.tracking_uri:
            point_mlflow_at(self.tracking_uri)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` under the retry policy (MLflow active on this store)."""
        self.activate()
        return with_retries(what, fn, self.max_retries)

    def lock(self, name: str, timeout: float = 600) -> contextlib.AbstractContextManager:
        """A cross-process lock named ``name`` for this store (other users may take it too);
        a timeout names the process holding it and the remedy (``locks.held``)."""
        key = hashlib.sha256(f"{self.tracking_uri}|{name}".encode()).hexdigest()[:16]
        return held(lock_dir(self.tracking_uri) / f"{key}.lock", f"{name} of {self.tracking_uri}",
                    timeout)

    def open(self) -> None:
        """Create, repair or upgrade the store's schema, one process at a time (concurrent
        first runs would otherwise race in the migrations and leave the database
        half-migrated). A process does the checks once per store."""
        self.call("connection", self._open_once)

    def _open_once(self) -> None:
        db = sqlite_path(self.tracking_uri)
        if db is None or self._cache.opened:
            return
        db.parent.mkdir(parents=True, exist_ok=True)
        check_writable(db)
        with self.lock("schema"):
            try:
                repair_half_migrated(db)
                self.client.search_experiments(max_results=1)  # tracking tables
                self.client.search_registered_models(max_results=1)  # registry tables
                relocate_artifacts(db)  # a copied home writes into itself
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise RegistryError(
                    f"the MLflow store {db} cannot be opened ({type(exc).__name__}: "
                    f"{str(exc)[:300]}). Back it up, then run `.venv/bin/mlflow db upgrade "
                    f"sqlite:///{db}`, or start afresh with `make clean-store`.") from None
        self._cache.opened = True

    def experiment_id(self, experiment: str | None = None) -> str:
        """Open the store and make sure ``experiment`` (default: the store's) exists, tagged
        as a model-development experiment; returns its id."""
        name = experiment or self.experiment
        known = self._cache.experiments.get(name)
        if known is not None:  # looked up (and tagged) once per store
            return known
        self.open()
        exp_id = self.call("connection", lambda: self._ensure_experiment(name))
        self._cache.experiments[name] = exp_id
        return exp_id

    def _ensure_experiment(self, name: str) -> str:
        client = self.client
        exp = client.get_experiment_by_name(name)
        if exp is None:
            try:
                exp_id = client.create_experiment(
                    name, artifact_location=artifact_root_for(self.tracking_uri))
            except MlflowException:
                exp = client.get_experiment_by_name(name)  # another pipeline created it
                if exp is None:
                    raise
                exp_id = exp.experiment_id
        else:
            exp_id = exp.experiment_id
        if exp is None or exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
            # MLflow 3 opens experiments without a kind in its GenAI view (traces, tokens).
            client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return exp_id

    def run_artifact(self, run: str | Run, artifact_path: str) -> bytes | None:
        """The bytes of one artifact of a run (its id, or its record when already read), or
        None when the run has no such artifact (a run of an older stockcast); other failures
        raise. Read from the run's artifact location: a ``runs:/`` download reads the whole
        run twice more and searches its logged models first (18-37 ms against 1.4 ms for one
        small file of the embedded store, 2026-12-03, 2-core AVX-512 EPYC)."""
        run_id = run if isinstance(run, str) else run.info.run_id
        try:
            root = (self.client.get_run(run) if isinstance(run, str) else run).info.artifact_uri
            repo = get_artifact_repository(root, tracking_uri=self.tracking_uri)
            listed = repo.list_artifacts(posixpath.dirname(artifact_path) or None)
            if artifact_path not in {entry.path for entry in listed}:
                log.info("run %s has no %s", run_id, artifact_path)
                return None
            with tempfile.TemporaryDirectory() as tmp:
                return Path(repo.download_artifacts(artifact_path, tmp)).read_bytes()
        except (MlflowException, OSError) as exc:
            if isinstance(exc, MlflowException) and "RESOURCE_DOES_NOT_EXIST" not in str(
                    exc.error_code):
                raise
            log.info("run %s has no %s (%s)", run_id, artifact_path, exc)
            return None

    def log_run(self, what: str, run_name: str, body: Callable[[str], T],
                experiment: str | None = None) -> T:
        """Run ``body(run_id)`` inside a new MLflow run, under the retry policy. A retry first
        deletes the run its failed attempt created, so exactly one run remains."""
        experiment_id = self.experiment_id(experiment)
        started: list[str] = []

        def attempt() -> T:
            if started:
                self.client.delete_run(started[-1])
                log.info("deleted run %s of a failed %s attempt before retrying", started.pop(),
                         what)
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
                started.append(run.info.run_id)
                return body(run.info.run_id)

        return self.call(what, attempt)
