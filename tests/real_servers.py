"""Real servers on 127.0.0.1 for the end-to-end tests, each in its own process group (stopping
it stops its helpers too): a Prefect server (SQLite or PostgreSQL database), an MLflow
tracking server with a proxied artifact store, and the `prefect` CLI against them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {timeout}s")


def start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def migrate_prefect_database(home: Path) -> Path:
    """A SQLite file with Prefect's schema migrated to head (`prefect server database
    upgrade`), for servers to start from a copy: a server migrates a fresh file on start,
    about 6 core-seconds of a 2-core test run each time, and only checks a migrated one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(home)
    subprocess.run([str(BIN / "prefect"), "server", "database", "upgrade", "-y"], env=env,
                   check=True, capture_output=True, timeout=300)
    return home / "prefect.db"


@contextlib.contextmanager
def prefect_server(home: Path, database_url: str | None = None,
                   migrated: Path | None = None) -> Iterator[dict]:
    """`prefect server start` on a free port; yields the environment that points the CLI, a
    worker and flows at it. ``database_url``: the server's own database
    (``postgresql+asyncpg://...``); default Prefect's SQLite file under ``home``, copied
    from ``migrated`` (``migrate_prefect_database``) when given."""
    if migrated is not None and database_url is None:
        (home / "prefect-home").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(migrated, home / "prefect-home" / "prefect.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(home / "prefect-home"),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
            "STOCKCAST_HOME": str(ROOT)}
    server_env = dict(env)
    if database_url:
        server_env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    proc = start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                  str(port)], server_env, home / "prefect-server.log")
    try:
        wait_healthy(f"http://127.0.0.1:{port}/api/health", proc)
        yield env
    finally:
        stop(proc)


def cli(program: str, env: dict, *args: str, timeout: float = 300
        ) -> subprocess.CompletedProcess:
    """One of the venv's commands (``prefect``, ``stockcast``) run in the checkout, as a user
    types it; asserts it succeeded."""
    out = subprocess.run([str(BIN / program), *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def prefect(env: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return cli("prefect", env, *args, timeout=timeout)


def start_mlflow_server(tmp_path: Path, backend: str | None = None
                        ) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on ``backend`` (default a SQLite file), artifacts served through it
    (``--artifacts-destination``: workers on other machines need only its URL)."""
    port = free_port()
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    proc = start([str(BIN / "mlflow"), "server", "--backend-store-uri",
                  backend or f"sqlite:///{tmp_path / 'server.db'}", "--artifacts-destination",
                  str(tmp_path / "server-artifacts"), "--host", "127.0.0.1", "--port", str(port),
                  "--workers", "1"], env, tmp_path / "mlflow-server.log")
    wait_healthy(f"http://127.0.0.1:{port}/health", proc)
    return proc, f"http://127.0.0.1:{port}"
