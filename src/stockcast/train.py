"""The training loop: device, mixed precision, early stopping. Returns a result; writes nothing."""

from __future__ import annotations

import copy
import functools
import logging
import math
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from stockcast.config import ModelConfig, TrainConfig
from stockcast.errors import TrainingError
from stockcast.model import LSTMForecaster

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainResult:
    """A trained model (best weights restored) and how it got there."""

    model: LSTMForecaster
    history: list[dict[str, float]]
    best_epoch: int
    device: str
    amp_dtype: str | None
    seconds: float
    windows_per_second: float
    stopped_early: bool
    extra: dict[str, object] = field(default_factory=dict)


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


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic (AVX512-BF16, AMX): oneDNN's LSTM then runs in
    bf16 at several times the float32 speed. Elsewhere bf16 is emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and bool(
        torch.ops.mkldnn._is_mkldnn_bf16_supported())


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


def seed_everything(seed: int) -> None:
    """Seed torch and numpy (training is then deterministic on CPU)."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def regression_scores(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of two same-shaped tensors (in whatever units they are in)."""
    err = (pred - target).double()
    mse = float((err**2).mean())
    var = float(((target.double() - target.double().mean()) ** 2).mean())
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(err.abs().mean()),
        "r2": 1.0 - mse / var if var > 0 else float("nan"),
    }


def build_model(input_size: int, output_size: int, cfg: ModelConfig) -> LSTMForecaster:
    """The LSTM a ModelConfig describes."""
    return LSTMForecaster(
        input_size=input_size,
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout,
        bidirectional=cfg.bidirectional,
        horizon=output_size,
        zero_init_head=cfg.target != "price",
    )


def _predict(model: nn.Module, x: torch.Tensor, amp: torch.dtype | None, batch: int = 4096):
    model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            ctx = torch.autocast(x.device.type, dtype=amp) if amp else nullcontext()
            with ctx:
                outs.append(model(x[i : i + batch]).float())
    return torch.cat(outs) if outs else torch.empty(0, device=x.device)


def predict(model: nn.Module, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Model outputs for windows ``x`` [W, L, F] as a numpy array [W, out]."""
    dev = torch.device(device)
    model = model.to(dev)
    return _predict(model, torch.as_tensor(x, device=dev), None).cpu().numpy()


def train_model(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    model_cfg: ModelConfig,
    cfg: TrainConfig,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train an LSTM on scaled windows with early stopping on validation loss.

    x_*: [W, L, F] float32, y_*: [W, out] float32 (scaled units). The whole data set is moved
    to the device once; batches are slices of a shuffled index, not a DataLoader.
    """
    if len(x_train) == 0 or len(x_val) == 0:
        raise TrainingError("no training or validation windows; provide a longer history")
    device = resolve_device(cfg.device)
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)  # 0 (auto) is resolved by the flow
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp = amp_dtype_for(device, cfg.amp)
    seed_everything(cfg.seed)

    model = build_model(x_train.shape[2], y_train.shape[1], model_cfg).to(device)
    # The fused Adam kernel (CPU and CUDA) saves a per-parameter Python loop each step.
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                           fused=device.type in ("cpu", "cuda"))
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    loss_fn = nn.MSELoss()
    pin = device.type == "cuda"
    xt = torch.as_tensor(x_train).pin_memory() if pin else torch.as_tensor(x_train)
    yt = torch.as_tensor(y_train).pin_memory() if pin else torch.as_tensor(y_train)
    xt, yt = xt.to(device, non_blocking=True), yt.to(device, non_blocking=True)
    xv = torch.as_tensor(x_val).to(device, non_blocking=True)
    yv = torch.as_tensor(y_val).to(device, non_blocking=True)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)

    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, bad_epochs = math.inf, 0, None, 0
    n = len(xt)
    progress = cfg.progress and sys.stderr.isatty()
    start = time.perf_counter()
    stopped_early = False
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            xb, yb = xt[idx], yt[idx]  # [B, L, F], [B, out]
            opt.zero_grad(set_to_none=True)
            ctx = torch.autocast(device.type, dtype=amp) if amp else nullcontext()
            with ctx:
                loss = loss_fn(model(xb).float(), yb)
            if scaler.is_enabled():  # fp16 on CUDA: scale the loss against underflow
                scaler.scale(loss).backward()
                if cfg.grad_clip:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if cfg.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip, foreach=True)
                opt.step()
            total += loss.detach() * len(idx)
        train_loss = total.item() / n  # one device sync per epoch, not per batch
        if not math.isfinite(train_loss):
            raise TrainingError(
                f"training diverged at epoch {epoch}: the loss became {train_loss}. "
                "Lower train.lr, keep train.grad_clip set, or check the input data; "
                "no model was registered."
            )
        pv = _predict(model, xv, amp)
        scores = regression_scores(pv, yv)
        if not math.isfinite(scores["mse"]):
            raise TrainingError(f"validation loss became {scores['mse']} at epoch {epoch}; "
                                "training diverged and no model was registered")
        metrics = {
            "train_loss": train_loss,
            "val_loss": scores["mse"],
            "val_rmse": scores["rmse"],
            "val_mae": scores["mae"],
            "val_r2": scores["r2"],
        }
        history.append(metrics)
        if on_epoch:
            on_epoch(epoch, metrics)
        if progress:
            print(f"\repoch {epoch:3d}/{cfg.epochs}  " + "  ".join(
                f"{k}={v:.4g}" for k, v in metrics.items()), end="", file=sys.stderr, flush=True)
        if metrics["val_loss"] < best_loss - 1e-12:
            best_loss, best_epoch, bad_epochs = metrics["val_loss"], epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                stopped_early = epoch < cfg.epochs
                break
    if progress:
        print(file=sys.stderr)
    seconds = time.perf_counter() - start
    assert best_state is not None
    model.load_state_dict(best_state)
    model.eval()
    epochs_run = len(history)
    return TrainResult(
        model=model.cpu(),
        history=history,
        best_epoch=best_epoch,
        device=str(device),
        amp_dtype=str(amp).replace("torch.", "") if amp else None,
        seconds=seconds,
        windows_per_second=epochs_run * n / seconds if seconds > 0 else float("nan"),
        stopped_early=stopped_early,
    )
