"""Where training runs and in which precision: the device (CUDA, MPS, CPU) and mixed precision
only where the hardware has it natively. The one place that asks the machine what it can do,
so tests monkeypatch these checks instead of depending on the machine they run on."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from stockcast.errors import TrainingError


def resolve_device(requested: str) -> torch.device:
    """``auto`` = CUDA if available, else MPS, else CPU; an unavailable explicit device fails."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was requested but no CUDA GPU is available; "
                            "use device: auto or cpu")
    if requested == "mps" and not torch.backends.mps.is_available():
        raise TrainingError("device 'mps' was requested but MPS is not available; use auto or cpu")
    return torch.device(requested)


NO_BF16_ENV = "STOCKCAST_NO_BF16"  # "1": behave as on a CPU without native bf16


@functools.cache
def cpu_flags_have_bf16() -> bool:
    """True where the CPU itself has bf16 arithmetic (AVX512-BF16, AMX) and oneDNN uses it,
    whatever ``STOCKCAST_NO_BF16`` says."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported())


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic (AVX512-BF16, AMX): oneDNN's LSTM then runs in
    bf16 at several times the float32 speed. Elsewhere bf16 is emulated and slower (and
    oneDNN refuses a bf16 LSTM outright on AVX2-only CPUs). ``STOCKCAST_NO_BF16=1`` forces
    the float32 answer, so a bf16 machine can check what an AVX2-only one would do."""
    if os.environ.get(NO_BF16_ENV, "").strip().lower() in {"1", "true", "yes"}:
        return False
    return cpu_flags_have_bf16()


def amp_dtype_for(device: torch.device, enabled: bool) -> torch.dtype | None:
    """Mixed precision: on CUDA bf16 where supported, else fp16 (with a grad scaler); on a CPU
    with native bf16, bf16; otherwise None (float32)."""
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None
