"""A throwaway PostgreSQL server on 127.0.0.1 for the end-to-end tests: Debian's binaries
(`apt-get install postgresql`), a cluster in a temporary directory, trust authentication, one
database per name asked for. `initdb` refuses to run as root, so as root the cluster belongs to
the `postgres` user the package creates.

Where PostgreSQL cannot be started the test skips with the reason, unless
STOCKCAST_REQUIRE_POSTGRES=1 (CI sets it): there a missing server is a failure."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRED = os.environ.get("STOCKCAST_REQUIRE_POSTGRES") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"PostgreSQL is required here (STOCKCAST_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"PostgreSQL unavailable: {reason} (apt-get install postgresql)")


def bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres(*databases: str) -> Iterator[str]:
    """A running server with ``databases`` created; yields ``postgres@127.0.0.1:PORT`` (the
    user, host and port a URL needs). The server is stopped and its files removed after."""
    binaries = bin_dir()
    if binaries is None:
        _unavailable("no initdb (neither /usr/lib/postgresql/*/bin nor PATH)")
    # Not under pytest's tmp_path: its directories are private to this user, and as root the
    # cluster belongs to `postgres`, who must reach it.
    data = Path(tempfile.mkdtemp(prefix="stockcast-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            shutil.chown(data, "postgres")
        except LookupError:
            shutil.rmtree(data)
            _unavailable("running as root and no `postgres` user to own the cluster")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        out = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            _unavailable(f"{Path(cmd[0]).name} failed: {(out.stdout + out.stderr)[-800:]}")

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
        "--no-sync")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-w", "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
    try:
        for name in databases:
            run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                name)
        yield f"postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(data, ignore_errors=True)
