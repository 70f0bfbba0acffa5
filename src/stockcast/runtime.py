"""The edge: the project root, the clock, and a config resolved against the environment once per
run. Imports nothing heavy (``stockcast --help`` must stay fast)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from pydantic import SecretStr

from stockcast.config import PipelineConfig
from stockcast.errors import ConfigError


def project_root() -> Path:
    """Where relative paths (data/, mlflow/, forecasts/) resolve: $STOCKCAST_HOME or the cwd."""
    return Path(os.environ.get("STOCKCAST_HOME") or Path.cwd()).resolve()


def path_inside(base: Path, *parts: str) -> Path:
    """``base / parts...``, refusing any name that is not a plain file or folder name (the one
    way paths are built from tickers and other names that come from users). The check is on
    the names, not on links: reading follows a link the user made; writing through one that
    leaves the home is refused by ``check_writable``."""
    base = Path(base)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\\" in part or Path(part).is_absolute():
            raise ConfigError(f"refusing to write outside {base}: {'/'.join(parts)!r} is not a "
                              "plain name")
    return base.joinpath(*parts)


def check_writable(path: Path, home: Path) -> Path:
    """``path`` unless writing it would go through a link that leads outside ``home`` (its
    folder resolves elsewhere); a link at ``path`` itself is replaced, never written through.
    ConfigError naming the link otherwise."""
    path, home = Path(path), Path(home)
    folder = path.parent.resolve()
    if not folder.is_relative_to(home.resolve()):
        raise ConfigError(f"refusing to write {path}: {path.parent} is a link that leads "
                          f"outside {home} (to {folder}). Reads follow links, writes never "
                          "leave the home: remove the link, or point data.data_dir at the "
                          "place you want written")
    return path


def utc_stamp() -> str:
    """A sortable UTC timestamp for file names, down to microseconds."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` tracking URI (query string dropped), else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///").split("?", 1)[0])


def default_tracking_uri(root: Path) -> str:
    """The embedded store: SQLite at mlflow/mlflow.db (absolute path), busy timeout 30 s."""
    db = (Path(root) / "mlflow" / "mlflow.db").resolve()
    return f"sqlite:///{db}?timeout=30"


def resolve_runtime(cfg: PipelineConfig, tracking_uri: str | None = None) -> PipelineConfig:
    """Absolute paths from the project root; tracking URI from the argument, the config,
    $MLFLOW_TRACKING_URI, or the embedded SQLite store, in that order."""
    root = project_root()

    def absolute(p: Path | None) -> Path | None:
        return None if p is None else (p if p.is_absolute() else root / p)

    uri = (tracking_uri or cfg.tracking.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
           or default_tracking_uri(root))
    return cfg.model_copy(update={
        "data": cfg.data.model_copy(update={"data_dir": absolute(cfg.data.data_dir),
                                            "csv_path": absolute(cfg.data.csv_path)}),
        "tracking": cfg.tracking.model_copy(update={
            "tracking_uri": uri,
            "model_key": cfg.tracking.model_key or _secret(os.environ.get("STOCKCAST_MODEL_KEY"))}),
        "forecast": cfg.forecast.model_copy(
            update={"output_dir": absolute(cfg.forecast.output_dir)}),
    })


def _secret(value: str | None) -> SecretStr | None:
    """The model key from the environment: unset is no key; set but empty (or blank) would
    silently turn verification off, so it is refused. Any other text works: it is used as
    UTF-8 bytes, and text that cannot be encoded (undecodable bytes in the environment) is
    refused with a message."""
    if value is None:
        return None
    if not value.strip():
        raise ConfigError("STOCKCAST_MODEL_KEY is set but empty: that would turn model "
                          "signing and verification off. Unset it to run without signatures, "
                          "or set the deployment's key.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError("STOCKCAST_MODEL_KEY holds bytes that are not valid UTF-8 text: "
                          "set it to printable text (e.g. `openssl rand -hex 32`).") from None
    return SecretStr(value)


# Cores a flow leaves to its orchestration (Prefect's engine, its temporary server, logging)
# when one training runs at a time. Measured on a 2-core AMD EPYC (AVX-512 BF16, 2026-12-03):
# GOOG's fit took 19.3 s in the flow on 2 threads against 7.2 s alone, and 8.1 s in the flow
# on 1 thread (bench/stages.py), so one ticker's run fell from 24.1 to 11.1 s. The likely
# cause: a fit's threads meet at a barrier every kernel, so when the server takes one core
# the other thread waits.
ORCHESTRATION_CORES = 1


def threads_per_training(cfg: PipelineConfig, spare_cores: int = 0) -> PipelineConfig:
    """Resolve ``train.threads = 0`` (auto) to an equal share of the cores per concurrently
    training ticker, so concurrent trainings never oversubscribe the CPU. A single training
    at a time leaves ``spare_cores`` to whatever runs beside it (the flow passes
    ``ORCHESTRATION_CORES``); several share every core, one thread each at least."""
    if cfg.train.threads:
        return cfg
    cores = os.cpu_count() or 1
    concurrent = max(1, min(len(cfg.tickers), cfg.orchestration.max_workers))
    threads = max(1, cores - spare_cores if concurrent == 1 else cores // concurrent)
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"threads": threads})})
