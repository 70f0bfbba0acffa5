"""How long the `stockcast` command takes, start to exit, with its garbage-collector settings
(``stockcast.collector``: no collections while it imports, its libraries frozen out of later
collections and of the exit) and without them (``cli.main`` called from a plain interpreter,
as a program would). Fresh processes, alternating, in a scratch project home whose GOOG
champion is trained once first (two epochs on the bundled sample); Prefect's local mode, so
each forecast starts its temporary server, as ``make forecast`` does."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spread import min_median_max

PROCESSES = 3
COMMANDS = {"models": ["models"],
            "promote": ["promote", "--ticker", "GOOG", "--version", "1"],  # a rollback
            "forecast": ["forecast", "--ticker", "GOOG", "--source", "sample"]}
WITHOUT = "import sys; from stockcast.cli import main; sys.exit(main())"


def _env(home: Path) -> dict:
    drop = ("PREFECT_API_URL", "MLFLOW_TRACKING_URI")
    return {**{k: v for k, v in os.environ.items() if k not in drop},
            "STOCKCAST_HOME": str(home), "PREFECT_HOME": str(home / ".prefect")}


def _seconds(argv: list[str], home: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=_env(home), cwd=home, capture_output=True, timeout=600,
                   check=True)
    return time.perf_counter() - start


def bench_command(processes: int = PROCESSES) -> dict:
    """Per command and setting (``collector``, ``plain``): each process's seconds."""
    stockcast = str(Path(sys.executable).with_name("stockcast"))
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        _seconds([stockcast, "run", "--ticker", "GOOG", "--source", "sample", "--epochs", "2"],
                 home)  # the champion to forecast with, and a migrated Prefect database
        runs: dict[str, dict[str, list[float]]] = {c: {"plain": [], "collector": []}
                                                   for c in COMMANDS}
        for _ in range(processes):
            for command, args in COMMANDS.items():
                runs[command]["plain"].append(_seconds([sys.executable, "-c", WITHOUT, *args],
                                                       home))
                runs[command]["collector"].append(_seconds([stockcast, *args], home))
    return runs


def markdown(runs: dict) -> list[str]:
    """The command table for the docs: min / median / max over the processes."""
    lines = ["**The `stockcast` command, start to exit** (fresh processes, alternating; seconds, "
             "min / median / max):", "",
             "| command | processes | collector settings (`stockcast`) | left out (`cli.main`) |",
             "|---|---:|---|---|"]
    for command, modes in runs.items():
        lines.append(f"| `stockcast {' '.join(COMMANDS[command])}` | "
                     f"{len(modes['collector'])} | {min_median_max(modes['collector'])} | "
                     f"{min_median_max(modes['plain'])} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(bench_command())))
