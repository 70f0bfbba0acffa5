"""Upkeep of an embedded SQLite MLflow store: can it be written, and finishing a schema
upgrade that was interrupted."""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from pathlib import Path

from stockcast.errors import RegistryError

log = logging.getLogger(__name__)


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
