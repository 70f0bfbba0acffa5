"""Run the test modules longest first, so two processes finish together.

`make test` hands whole modules to its processes (``--dist loadfile``: a module's fixtures are
set up once), the next module to whichever process is free. Taken in collection order, the
longest modules (the real-server tests) came last and one process ran them alone for two
minutes while the other sat idle; longest first, the short ones fill in at the end.

The order comes from ``tests/durations.json``: the seconds each module took (setup, call and
teardown of its tests), measured by ``make test ARGS=--store-durations``. A module it does not
name runs after the measured ones, in collection order.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser):
    parser.addoption("--store-durations", action="store_true",
                     help=f"write each module's seconds to {DURATIONS.name} (the run order)")


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def longest_first(nodeids: list[str], seconds: dict[str, float]) -> list[int]:
    """Indices of ``nodeids`` with modules in descending ``seconds``; ties, unmeasured
    modules and the tests inside one module keep their collection order."""
    first_seen: dict[str, int] = {}
    for i, nodeid in enumerate(nodeids):
        first_seen.setdefault(module_of(nodeid), i)
    return sorted(range(len(nodeids)), key=lambda i: (
        -seconds.get(module_of(nodeids[i]), 0.0), first_seen[module_of(nodeids[i])], i))


def pytest_collection_modifyitems(config, items):
    if not DURATIONS.exists():
        return
    seconds = json.loads(DURATIONS.read_text())["seconds"]
    order = longest_first([item.nodeid for item in items], seconds)
    items[:] = [items[i] for i in order]


class _Recorder:
    """Sums each module's test durations in the process that reports them (the controller
    under xdist) and writes them at the end of a passing run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report):
        self.seconds[module_of(report.nodeid)] += report.duration

    def pytest_sessionfinish(self, session, exitstatus):
        if exitstatus != 0 or not self.seconds:
            return  # a failed run's durations (tests cut short) would mislead the order
        ranked = sorted(self.seconds.items(), key=lambda kv: -kv[1])
        DURATIONS.write_text(json.dumps(
            {"note": "seconds per test module, written by `make test ARGS=--store-durations`;"
                     " tests/longest_first.py runs the modules in this order",
             "seconds": {module: round(s, 1) for module, s in ranked}}, indent=1) + "\n")


def pytest_configure(config):
    if config.getoption("store_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Recorder(), "longest-first-recorder")
