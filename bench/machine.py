"""The machine a bench ran on, printed beside its tables: figures from different CPUs are not
comparable (bf16 autocast where the CPU has it natively, OpenBLAS/ATen kernels by ISA)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

from stockcast.modeling.device import amp_dtype_for, cpu_flags_have_bf16

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_model() -> str:
    """The CPU's model name as ``lscpu`` prints it (``/proc/cpuinfo`` where lscpu is absent)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def describe(malloc: str) -> dict:
    """CPU model, core count, the ISA flags that choose the kernels, and what training uses
    (``malloc``: what ``pin_malloc_thresholds`` did in this process)."""
    words = set(_cpuinfo().split())
    amp = amp_dtype_for(torch.device("cpu"), True)
    return {"cpu": cpu_model(), "cpus": os.cpu_count(),
            "flags": {f: f in words for f in FLAGS},
            "native_bf16": cpu_flags_have_bf16(),
            "training_precision": str(amp).replace("torch.", "") if amp else "float32",
            "torch": torch.__version__, "cuda": torch.cuda.is_available(),
            "python": sys.version.split()[0], "malloc": malloc}


def headline(machine: dict) -> str:
    """One line naming the machine, for the top of every bench table."""
    flags = ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in machine["flags"].items())
    return (f"{machine['cpu']}, {machine['cpus']} cores ({flags}); training in "
            f"{machine['training_precision']}; torch {machine['torch']}; malloc thresholds "
            f"{machine['malloc']}"
            f"{', CUDA' if machine['cuda'] else ''}")
