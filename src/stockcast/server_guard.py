"""The temporary Prefect server a run starts (Prefect's local mode, no ``PREFECT_API_URL``)
ends with the run, also when the run is killed outright (SIGKILL, the OOM killer), which no
handler inside it sees: the server would otherwise live on, orphaned, holding memory and CPU.

A watchdog process per server, in its own session (a signal to the run's process group does
not reach it), watches its parent: once the run is gone it stops the server (SIGTERM, then
SIGKILL after 5 s) and exits; it exits by itself when the server ends first."""

from __future__ import annotations

import logging
import subprocess
import sys

log = logging.getLogger(__name__)

WATCHDOG = """
import os, signal, sys, time
parent, server = int(sys.argv[1]), int(sys.argv[2])

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

while alive(server):
    if os.getppid() != parent:  # the run is gone: this process was handed to another parent
        os.kill(server, signal.SIGTERM)
        for _ in range(50):
            time.sleep(0.1)
            if not alive(server):
                sys.exit(0)
        os.kill(server, signal.SIGKILL)
        sys.exit(0)
    time.sleep(0.5)
"""

_GUARDED: set[int] = set()


def temporary_server_pids() -> list[int]:
    """The process ids of the temporary Prefect servers this process started and that run."""
    from prefect.server.api.server import SubprocessASGIServer

    pids = []
    for server in list(getattr(SubprocessASGIServer, "_instances", {}).values()):
        process = getattr(server, "server_process", None)
        if process is not None and process.poll() is None:
            pids.append(process.pid)
    return pids


def guard_temporary_server() -> list[int]:
    """Start a watchdog for each temporary Prefect server of this process not yet guarded;
    the servers now guarded. Never fails the run (a guard is a safety net)."""
    import os

    try:
        for pid in temporary_server_pids():
            if pid in _GUARDED:
                continue
            subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(pid)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
            _GUARDED.add(pid)
    except Exception as exc:  # the run goes on; a kill -9 may then leave the server behind
        log.warning("the temporary Prefect server is not guarded (%s)", exc)
    return sorted(_GUARDED)
