"""Cross-process locks that say who holds them: whoever takes one writes its process, host,
command and time beside it, and whoever times out waiting names that holder and the remedy
(wait for it, or, when that process is gone, remove the lock file)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from stockcast.errors import RegistryError
from stockcast.runtime import sqlite_path


def lock_dir(tracking_uri: str) -> Path:
    """Where a store's locks live: beside a SQLite store (inside the project home), else a
    shared, sticky folder in the temp directory that every user can use."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        path = db.parent / ".locks"
        path.mkdir(parents=True, exist_ok=True)
        return path
    path = Path(tempfile.gettempdir()) / "stockcast-locks"
    path.mkdir(exist_ok=True)
    with contextlib.suppress(PermissionError):  # someone else's folder: already shared
        path.chmod(0o1777)
    return path


def _holder_path(path: Path) -> Path:
    return path.with_name(path.name + ".holder")


def describe_holder(path: Path) -> str:
    """Who took the lock at ``path`` last, in words ("an unknown process" if nobody said)."""
    try:
        h = json.loads(_holder_path(path).read_text())
        return (f"process {h['pid']} on {h['host']} ({h['command']}), since {h['since']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process"


@contextlib.contextmanager
def held(path: Path, what: str, timeout: float = 600) -> Iterator[None]:
    """Hold the lock at ``path`` (``what`` it guards, in words) for the block; RegistryError
    naming the holder and the remedy after ``timeout`` seconds of waiting."""
    lock = FileLock(str(path), timeout=timeout, mode=0o666)
    try:
        lock.acquire()
    except Timeout as exc:
        raise RegistryError(
            f"waited {timeout:.0f} s for the lock on {what}, held by {describe_holder(path)}: "
            f"wait for that run to finish, or, if that process no longer runs, delete {path} "
            "and try again") from exc
    try:
        with contextlib.suppress(OSError):  # the record is a courtesy: never fail the holder
            _holder_path(path).write_text(json.dumps({
                "pid": os.getpid(), "host": socket.gethostname(),
                "command": " ".join(sys.argv)[:200] or "python",
                "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}))
        yield
    finally:
        lock.release()
