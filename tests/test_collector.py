"""The `stockcast` command's collector settings (stockcast.collector), in fresh interpreters:
they must never leak into a program that calls the CLI's main()."""

import subprocess
import sys

COMMAND = """
import gc, sys
from stockcast.collector import collect_from_here, run_as_command

def main():
    seen = [gc.isenabled()]               # while the command imports
    collect_from_here()                   # its long-running part starts
    seen += [gc.isenabled(), gc.get_freeze_count() > 0]
    print(seen, flush=True)
    return 3

run_as_command(main)
"""

PROGRAM = """
import gc
from stockcast.collector import collect_from_here
collect_from_here()
print([gc.isenabled(), gc.get_freeze_count()])
"""


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


def test_a_command_imports_without_collections_then_collects_what_its_run_makes():
    out = _run(COMMAND)
    assert out.returncode == 3, out.stderr  # main's exit code
    assert out.stdout.strip() == "[False, True, True]"


def test_a_program_calling_the_cli_keeps_its_collector():
    out = _run(PROGRAM)
    assert out.stdout.strip() == "[True, 0]", out.stderr
