"""Pinned malloc thresholds or glibc's own? The same training in fresh processes: ten epochs of
the default network on one thread (GOOG's sample), each process timed with its minor page
faults, once with the thresholds the trainer pins (``stockcast.modeling.allocator``) and once
with glibc's moving defaults, alternating. One process says nothing: glibc's thresholds follow
a process's earlier allocations, so the same training is fast in one process and slow in the
next; the spread over processes is the measurement."""

from __future__ import annotations

import json
import subprocess
import sys

from spread import min_median_max

PROCESSES = 6

CHILD = """
import json, resource, sys, time
from stockcast.config import PipelineConfig
from stockcast.data.files import read_price_file, sample_path
from stockcast.data.schemas import validate_prices
from stockcast.data.sources import PriceData
from stockcast.modeling import trainer
from stockcast.modeling.windows import prepare_windows
if sys.argv[1] == "glibc":
    trainer.pin_malloc_thresholds = lambda: "glibc's own"  # the trainer's pin left out
cfg = PipelineConfig()
train = cfg.train.model_copy(update={"threads": 1, "progress": False, "epochs": 10,
                                     "patience": 10})
frame = validate_prices(PriceData("GOOG", read_price_file(sample_path("GOOG")), "sample", ""),
                        cfg.window, cfg.validation).frame
data = prepare_windows(frame, cfg.window, cfg.model)
before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
trainer.train_model(data.train, data.val, cfg.model, train)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "minor_faults": after.ru_minflt - before.ru_minflt,
                  "kernel_s": after.ru_stime - before.ru_stime}))
"""


def _one(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True,
                         timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_allocator(processes: int = PROCESSES) -> dict:
    """Per mode (``pinned``, ``glibc``): each fresh process's seconds, faults and kernel time."""
    runs: dict[str, list[dict]] = {"pinned": [], "glibc": []}
    for _ in range(processes):
        for mode in ("glibc", "pinned"):
            runs[mode].append(_one(mode))
    return runs


def markdown(runs: dict) -> list[str]:
    """The allocator table for the docs: range and median over the processes."""
    lines = ["**Malloc thresholds** (fresh processes, 10 epochs of the default network on one "
             "thread, GOOG; min / median / max over the processes):", "",
             "| thresholds | processes | seconds | minor page faults | kernel s |",
             "|---|---:|---|---|---|"]
    for mode, rows in runs.items():
        label = "pinned (the trainer's)" if mode == "pinned" else "glibc's own (moving)"
        lines.append(f"| {label} | {len(rows)} | {min_median_max(r['seconds'] for r in rows)} | "
                     f"{min_median_max((r['minor_faults'] for r in rows), ',.0f')} | "
                     f"{min_median_max(r['kernel_s'] for r in rows)} |")
    return lines + [""]


if __name__ == "__main__":
    print("\n".join(markdown(bench_allocator())))
