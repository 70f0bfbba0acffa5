"""glibc's malloc thresholds pinned for training: a freed buffer is reused, not faulted in
again. Each check runs in a fresh interpreter, because the thresholds are process-wide and
glibc's defaults move with a process's history."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
    reason="the thresholds are glibc's")

# 20 rounds of malloc, touch every page, free, for a 40 MiB block: above the 32 MiB that glibc's
# own threshold can rise to, so with its defaults every round maps fresh pages (10,240 minor
# faults a round with 4 KiB pages; at least 20 where transparent huge pages back the block);
# with the pinned thresholds the block stays in the heap after the first round.
ROUNDS_AFTER_FIRST = 20
ROUNDS = """
import ctypes, resource, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
if sys.argv[1] == "pin":
    from stockcast.modeling.allocator import pin_malloc_thresholds
    print(pin_malloc_thresholds(), file=sys.stderr)
size = 40 << 20
block = libc.malloc(size); libc.memset(block, 1, size); libc.free(block)  # the first round
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(int(sys.argv[2])):
    block = libc.malloc(size); libc.memset(block, 1, size); libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
HUGE_PAGES_PER_ROUND = (40 << 20) // (2 << 20)  # the fewest faults a fresh 40 MiB mapping takes


def _faults(mode: str, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", ROUNDS, mode, str(ROUNDS_AFTER_FIRST)],
                         capture_output=True, text=True, env={**clean, **env}, timeout=120,
                         check=True)
    return int(out.stdout.strip()), out.stderr.strip()


def test_pinned_thresholds_reuse_a_freed_block_instead_of_faulting_it_in_again():
    unpinned, _ = _faults("default")
    pinned, said = _faults("pin")
    assert said.startswith("pinned (mmap 64 MiB, trim 128 MiB)")
    # glibc's defaults: every round faults the whole block in again, whatever the page size
    assert unpinned >= ROUNDS_AFTER_FIRST * HUGE_PAGES_PER_ROUND
    # pinned: the block is reused, not faulted in again (fewer faults than one round's)
    assert pinned < HUGE_PAGES_PER_ROUND


def test_the_operators_malloc_settings_are_left_alone():
    faults, said = _faults("pin", MALLOC_TRIM_THRESHOLD_="131072")
    assert said == "left to the environment (MALLOC_TRIM_THRESHOLD_)"
    # nothing was pinned over the operator's choice: every round faults again
    assert faults >= ROUNDS_AFTER_FIRST * HUGE_PAGES_PER_ROUND


def test_training_pins_the_thresholds(monkeypatch):
    from stockcast.config import TrainConfig
    from stockcast.modeling import trainer

    calls = []
    monkeypatch.setattr(trainer, "pin_malloc_thresholds", lambda: calls.append(1) or "")
    trainer._prepare_device(TrainConfig(device="cpu"))  # threads 0: the thread count untouched
    assert calls == [1]
