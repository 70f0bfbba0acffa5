"""Python's cyclic garbage collector around a command's imports and exit.

A command imports torch, Prefect, MLflow and pandas: about half a million objects that live
until the process ends. Every full collection walks them again: during the imports (several
full collections, 0.7-1 s of a 5-6 s import) and when the interpreter finalises at exit
(1.4-2 s). ``gc.freeze`` moves the objects alive at that moment to a generation the
collector never walks, as large Python services do after start-up: collections afterwards see
only what the run itself makes. Applied by the ``stockcast`` command only (``cli.entry``),
never at import, so a program that calls ``cli.main`` keeps its own collector settings.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import NoReturn


def run_as_command(main: Callable[[], int]) -> NoReturn:
    """``main`` as a command-line process: no cyclic collections while it imports its
    libraries (until ``collect_from_here``), none of them walked at exit; exits with its code."""
    gc.disable()
    code = main()
    gc.freeze()
    sys.exit(code)


def collect_from_here() -> None:
    """Before a command's long-running part (a flow, a backtest, a server): what is alive
    now (the imported libraries) leaves the collector's sight, and collection is on again.
    A no-op outside ``run_as_command`` (``cli.main`` called from a program)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()

