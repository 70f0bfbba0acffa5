"""The MLflow store: where it is, the experiment, and the one retry policy for every MLflow
call. Only transient errors are retried (the network, HTTP 5xx, a busy SQLite database); a
bug or a refused request fails at once with its own message."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import mlflow
from mlflow.exceptions import MlflowException, RestException
from mlflow.tracking import MlflowClient
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from stockcast.config import TrackingConfig
from stockcast.errors import RegistryError
from stockcast.registry.locks import held, lock_dir
from stockcast.registry.relocation import relocate_artifacts
from stockcast.runtime import sqlite_path

log = logging.getLogger(__name__)
T = TypeVar("T")
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
BACKOFF_SECONDS = 1.0  # first wait; doubles per retry (tracking.max_retries sets how many)


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


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_transient(exc: BaseException) -> bool:
    """True for failures a retry can cure: network errors and timeouts, HTTP 5xx answers
    from a tracking server, and a locked/busy SQLite database."""
    import requests
    import sqlalchemy.exc

    for err in _chain(exc):
        if isinstance(err, ConnectionError | TimeoutError | requests.ConnectionError
                      | requests.Timeout):
            return True
        if isinstance(err, sqlalchemy.exc.OperationalError) and any(
                word in str(err).lower() for word in ("locked", "busy")):
            return True
        from_server = isinstance(err, RestException) or str(err).startswith("API request to")
        if isinstance(err, MlflowException) and from_server and err.get_http_status_code() >= 500:
            return True
    return False


def _log_retry(state) -> None:
    log.warning("MLflow call failed (%s); retrying in %.1fs", state.outcome.exception(),
                state.next_action.sleep)


def with_retries(what: str, fn: Callable[[], T], retries: int) -> T:
    """Call ``fn``; retry transient failures ``retries`` times with exponential backoff. A
    failure that remains is a RegistryError naming the store; MLflow's refusals are too."""
    retrying = Retrying(stop=stop_after_attempt(retries + 1),
                        wait=wait_exponential(multiplier=BACKOFF_SECONDS, max=30),
                        retry=retry_if_exception(is_transient), before_sleep=_log_retry,
                        reraise=True)
    try:
        return retrying(fn)
    except Exception as exc:
        if is_transient(exc):
            raise RegistryError(
                f"MLflow {what} failed after {retries + 1} attempt(s): the tracking store "
                f"({mlflow.get_tracking_uri()}) did not answer ({type(exc).__name__}: "
                f"{str(exc)[:300]}). Check that it is running and reachable; nothing was "
                "promoted.") from exc
        if isinstance(exc, MlflowException):
            raise RegistryError(f"MLflow {what} failed: MLflow refused the request "
                                f"({str(exc)[:300]}); nothing was promoted.") from exc
        raise


def check_writable(db: Path) -> None:
    """RegistryError unless the SQLite store and its artifact folder can be written (probed
    with a real write, so it holds for any user and any file system)."""
    artifacts = db.parent / "artifacts"
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=artifacts):
            pass
        if db.exists():
            con = sqlite3.connect(db, timeout=30)
            try:
                con.execute("BEGIN IMMEDIATE")
                con.rollback()
            finally:
                con.close()
    except (OSError, sqlite3.Error) as exc:
        raise RegistryError(
            f"the MLflow store {db} (or {artifacts}) cannot be written: {exc}. Make it writable "
            "or pass --tracking-uri to another store; nothing was trained.") from None


def repair_half_migrated(db: Path) -> bool:
    """Finish a schema upgrade that was interrupted (alembic's batch copies left behind):
    put a copied table back if its original is gone, drop the redundant copies, and run the
    upgrade again. True when something was repaired."""
    if not db.exists():
        return False
    con = sqlite3.connect(db, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
        for tmp in leftovers:
            original = tmp.removeprefix("_alembic_tmp_")
            if original in tables:
                con.execute(f'DROP TABLE "{tmp}"')
            else:
                con.execute(f'ALTER TABLE "{tmp}" RENAME TO "{original}"')
        con.commit()
    finally:
        con.close()
    if not leftovers:
        return False
    import sqlalchemy
    from mlflow.store.db.utils import _upgrade_db

    log.warning("the MLflow store %s was left half-migrated (%s); repairing", db,
                ", ".join(leftovers))
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    try:
        _upgrade_db(engine)
    finally:
        engine.dispose()
    return True


_OPENED: set[str] = set()  # SQLite stores this process has opened (and checked) already
_CLIENTS: dict[str, MlflowClient] = {}  # one client per store and process
_EXPERIMENTS: dict[tuple[str, str], str] = {}  # (store, experiment name) -> id, once checked

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

    @classmethod
    def from_config(cls, cfg: TrackingConfig) -> MlflowStore:
        """The store a (runtime-resolved) tracking section names."""
        if not cfg.tracking_uri:
            raise RegistryError("no MLflow tracking URI: resolve the config (resolve_runtime) "
                                "or pass --tracking-uri")
        return cls(cfg.tracking_uri, cfg.experiment, cfg.max_retries)

    @property
    def client(self) -> MlflowClient:
        """The process's one client on this store (it holds no per-call state; MLflow caches
        the underlying store per URI as well)."""
        client = _CLIENTS.get(self.tracking_uri)
        if client is None:
            client = _CLIENTS.setdefault(self.tracking_uri, MlflowClient(self.tracking_uri))
        return client

    def activate(self) -> None:
        """Point MLflow's fluent API at this store (without leaking the URI into the
        environment) and apply MLflow's settings this project relies on."""
        os.environ.update(MLFLOW_ENV)
        for key, value in MLFLOW_ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        point_mlflow_at(self.tracking_uri)

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """``fn()`` under the retry policy (MLflow active on this store)."""
        self.activate()
        return with_retries(what, fn, self.max_retries)

    def lock(self, name: str, timeout: float = 600) -> contextlib.AbstractContextManager:
        """A cross-process lock named ``name`` for this store (other users may take it too);
        a timeout names the process holding it and the remedy (``locks.held``)."""
        key = hashlib.sha256(f"{self.tracking_uri}|{name}".encode()).hexdigest()[:16]
        return held(lock_dir(self.tracking_uri) / f"{key}.lock", f"{name} of {self.tracking_uri}", timeout)

    def open(self) -> None:
        """Create, repair or upgrade the store's schema, one process at a time (concurrent
        first runs would otherwise race in the migrations and leave the database
        half-migrated). A process does the checks once per store."""
        self.call("connection", self._open_once)

    def _open_once(self) -> None:
        db = sqlite_path(self.tracking_uri)
        if db is None or self.tracking_uri in _OPENED:
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
        _OPENED.add(self.tracking_uri)

    def experiment_id(self, experiment: str | None = None) -> str:
        """Open the store and make sure ``experiment`` (default: the store's) exists, tagged
        as a model-development experiment; returns its id."""
        name = experiment or self.experiment
        known = _EXPERIMENTS.get((self.tracking_uri, name))
        if known is not None:  # looked up (and tagged) once per process
            return known
        self.open()
        exp_id = self.call("connection", lambda: self._ensure_experiment(name))
        _EXPERIMENTS[(self.tracking_uri, name)] = exp_id
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

    def run_artifact(self, run_id: str, artifact_path: str) -> bytes | None:
        """The bytes of one artifact of a run, or None when the run has no such artifact
        (a run of an older stockcast); other failures raise."""
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=artifact_path, dst_path=tmp,
                    tracking_uri=self.tracking_uri)
                return Path(path).read_bytes()
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
