"""A project home copied or moved keeps working in its new place: the embedded SQLite store
records absolute artifact locations (``file:///old/home/mlflow/artifacts/...``), so a copy
would go on writing into, and reading from, the home it was copied from. When the store's
experiments point at another home's ``mlflow/artifacts`` and those artifacts came along (a
run's folder is there in this home too), every recorded location is rewritten to this home's,
once, under the store's schema lock. A location the user chose elsewhere is left alone."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from urllib.parse import unquote, urlparse

log = logging.getLogger(__name__)

# Every column MLflow 3.17 keeps an artifact location in.
LOCATIONS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
             ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
             ("model_versions", "source"))


def _path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def _moved_root(con: sqlite3.Connection, root: str) -> str | None:
    """The artifact root of the home this store was copied from, or None."""
    here = _path(root)
    for (location,) in con.execute("SELECT artifact_location FROM experiments"):
        if not location or not location.startswith("file:") or location == root:
            continue
        old = _path(location)
        if old.parts[-2:] != here.parts[-2:] or old == here:  # not stockcast's layout: chosen
            continue
        runs = [uri for (uri,) in con.execute(
            "SELECT artifact_uri FROM runs WHERE substr(artifact_uri, 1, ?) = ?",
            (len(location) + 1, location + "/"))]
        if not runs or any((here / _path(uri).relative_to(old)).exists() for uri in runs):
            return location
    return None


def relocate_artifacts(db: Path) -> int:
    """Point the store's artifact locations at this home's ``artifacts`` folder beside ``db``
    when they point at the home it was copied or moved from; the number of rows rewritten."""
    root = (db.parent / "artifacts").resolve().as_uri()
    con = sqlite3.connect(db, timeout=30)
    try:
        with con:
            old = _moved_root(con, root)
            if old is None:
                return 0
            tables = {name for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            changed = 0
            for table, column in LOCATIONS:
                if table not in tables:
                    continue
                changed += con.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "  # noqa: S608
                    f"WHERE {column} = ? OR substr({column}, 1, ?) = ?",
                    (root, len(old) + 1, old, len(old) + 1, old + "/")).rowcount
    finally:
        con.close()
    log.warning("the MLflow store %s was copied or moved from the home whose artifacts are %s: "
                "%d recorded artifact locations now point into %s", db, old, changed, root)
    return changed
