"""The training loop: device, mixed precision, early stopping. Returns a result; writes nothing.

Randomness comes only from a generator seeded with ``train.seed`` (initialisation and batch
order), never from torch's or numpy's global RNG, so tickers trained concurrently in threads
get exactly the weights each would get alone.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from torch import nn
from torch.profiler import record_function

from stockcast.config import ModelConfig, TrainConfig
from stockcast.errors import TrainingError
from stockcast.modeling.allocator import pin_malloc_thresholds
from stockcast.modeling.device import amp_dtype_for, resolve_device
from stockcast.modeling.model import LSTMForecaster, split_output
from stockcast.modeling.targets import TARGETS
from stockcast.modeling.windows import Split
from stockcast.stopping import raise_if_stopped

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]
PROGRESS_SECONDS = 10.0
# The epoch's phases as torch.profiler sees them (bench/throughput.py's epoch profile). With no
# profiler running a scope costs about 10 us (measured on the bf16 Xeon): 5 per batch, about
# 0.25 % of a default batch's 20 ms.
PHASES = ("train.gather", "train.forward", "train.backward", "train.optimizer",
          "train.validate")


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


def build_model(input_size: int, output_size: int, cfg: ModelConfig,
                generator: torch.Generator, device: torch.device | str = "cpu") -> LSTMForecaster:
    """The LSTM a ModelConfig describes on ``device``, initialised from ``generator`` only
    (built on the meta device first, so torch's global RNG is never touched)."""
    with torch.device("meta"):
        model = LSTMForecaster(
            input_size=input_size,
            hidden_size=cfg.hidden_size,
            num_layers=cfg.num_layers,
            dropout=cfg.dropout,
            bidirectional=cfg.bidirectional,
            horizon=output_size,
            zero_init_head=TARGETS[cfg.target].zero_init_head,
        )
    # Initialised on the CPU (where the generator lives), then moved.
    return model.to_empty(device="cpu").reset_parameters(generator).to(device)


def _predict(model: nn.Module, x: torch.Tensor, amp: torch.dtype | None, batch: int = 4096):
    if model.training:  # only ever switched once: a served model is shared by threads
        model.eval()
    outs = []
    with torch.inference_mode():
        for i in range(0, len(x), batch):
            ctx = torch.autocast(x.device.type, dtype=amp) if amp else nullcontext()
            with ctx:
                outs.append(model(x[i : i + batch]).float())
    return torch.cat(outs) if outs else torch.empty(0, device=x.device)


def predict(model: nn.Module, split: Split) -> tuple[np.ndarray, np.ndarray]:
    """The model's location and scale [W, out] (scaled units) for a split's windows, on the CPU.
    Reads the model without changing it when it is already on the CPU in eval mode, so one
    served model answers concurrent requests (``Module.cpu()`` rebuilds an LSTM's flat weight
    list even when nothing moves, under another thread's forward)."""
    if any(p.device.type != "cpu" for p in model.parameters()):
        model = model.cpu()
    out = _predict(model, torch.as_tensor(split.x), None)
    loc, scale = split_output(out, torch.as_tensor(split.base))
    return loc.double().numpy(), scale.double().numpy()


def gaussian_nll(out: torch.Tensor, y: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood of targets under the predicted location/scale."""
    loc, scale = split_output(out.float(), base)
    return nn.functional.gaussian_nll_loss(loc, y, scale**2)


@dataclass
class _Loop:
    """What one training run holds on the device."""

    model: LSTMForecaster
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp: torch.dtype | None
    generator: torch.Generator
    grad_clip: float | None
    batch_size: int


def _train_epoch(loop: _Loop, x: torch.Tensor, y: torch.Tensor, base: torch.Tensor) -> float:
    """One pass over shuffled mini-batches; the mean training loss (one device sync)."""
    model = loop.model
    model.train()
    n = len(x)
    perm = torch.randperm(n, generator=loop.generator).to(x.device)
    total = torch.zeros((), device=x.device)
    for i in range(0, n, loop.batch_size):
        raise_if_stopped("training")  # SIGTERM / Ctrl-C: end within a batch (stopping.py)
        with record_function(PHASES[0]):
            idx = perm[i : i + loop.batch_size]
            xb, yb, bb = x[idx], y[idx], base[idx]  # [B, L, F], [B, out], [B, out]
        loop.opt.zero_grad(set_to_none=True)
        ctx = torch.autocast(x.device.type, dtype=loop.amp) if loop.amp else nullcontext()
        with record_function(PHASES[1]), ctx:
            loss = gaussian_nll(model(xb), yb, bb)
        _step(loop, loss)
        total += loss.detach() * len(idx)
    return total.item() / n


def _step(loop: _Loop, loss: torch.Tensor) -> None:
    """Backward pass, clipping and the optimiser's step (through the grad scaler for fp16)."""
    model, opt, scaler = loop.model, loop.opt, loop.scaler
    with record_function(PHASES[2]):
        (scaler.scale(loss) if scaler.is_enabled() else loss).backward()
    with record_function(PHASES[3]):
        if scaler.is_enabled():  # fp16 on CUDA: scale the loss against underflow
            if loop.grad_clip:
                scaler.unscale_(opt)
                nn.utils.clip_grad_norm_(model.parameters(), loop.grad_clip)
            scaler.step(opt)
            scaler.update()
        else:
            if loop.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), loop.grad_clip, foreach=True)
            opt.step()


def _validate_epoch(loop: _Loop, x: torch.Tensor, y: torch.Tensor,
                    base: torch.Tensor) -> dict[str, float]:
    """Validation scores in scaled units; the negative log-likelihood (``val_loss``) is the
    early-stopping criterion, the others describe the location (point) forecast."""
    with record_function(PHASES[4]):
        out = _predict(loop.model, x, loop.amp)
    loss = float(gaussian_nll(out, y, base))
    pred = split_output(out, base)[0].double().cpu().numpy()
    true = y.double().cpu().numpy()
    if not (math.isfinite(loss) and np.isfinite(pred).all()):
        return {"val_loss": math.nan}
    mse = mean_squared_error(true, pred)
    return {"val_loss": loss, "val_rmse": math.sqrt(mse), "val_mae": mean_absolute_error(true, pred),
            "val_r2": r2_score(true.ravel(), pred.ravel()) if len(true) > 1 else math.nan}


@dataclass
class EarlyStopping:
    """Keeps the best weights; says stop after ``patience`` epochs without improvement."""

    patience: int
    best_loss: float = math.inf
    best_epoch: int = 0
    best_state: dict | None = field(default=None, repr=False)
    bad_epochs: int = 0

    def update(self, epoch: int, loss: float, model: nn.Module) -> bool:
        """Record an epoch's validation loss; True when training should stop."""
        if loss < self.best_loss - 1e-12:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


def _check_finite(epoch: int, metrics: dict[str, float]) -> None:
    for key in ("train_loss", "val_loss"):
        if not math.isfinite(metrics[key]):
            raise TrainingError(
                f"training diverged at epoch {epoch}: {key} became {metrics[key]}. "
                "Lower train.lr, keep train.grad_clip set, or check the input data; "
                "no model was registered.")


def _to_device(split: Split, device: torch.device) -> tuple[torch.Tensor, ...]:
    arrays = (torch.as_tensor(split.x), torch.as_tensor(split.y), torch.as_tensor(split.base))
    if device.type == "cuda":  # pinned host memory: an asynchronous copy
        arrays = tuple(a.pin_memory() for a in arrays)
    return tuple(a.to(device, non_blocking=True) for a in arrays)


def _prepare_device(cfg: TrainConfig) -> torch.device:
    device = resolve_device(cfg.device)
    pin_malloc_thresholds()  # a batch's buffers reused, not page-faulted in again (allocator.py)
    if device.type == "cpu" and cfg.threads:
        torch.set_num_threads(cfg.threads)  # 0 (auto) is resolved by the flow
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return device


def _new_loop(train: Split, model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device,
              init: torch.nn.Module | None = None) -> _Loop:
    generator = torch.Generator(device="cpu").manual_seed(cfg.seed)
    model = build_model(train.x.shape[2], train.y.shape[1], model_cfg, generator, device)
    if init is not None:  # a warm start: continue from these weights
        model.load_state_dict(init.state_dict())
    amp = amp_dtype_for(device, cfg.amp)
    # The fused Adam kernel (CPU and CUDA) saves a per-parameter Python loop each step.
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                           fused=device.type in ("cpu", "cuda"))
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    return _Loop(model, opt, scaler, amp, generator, cfg.grad_clip, cfg.batch_size)


def train_model(train: Split, val: Split, model_cfg: ModelConfig, cfg: TrainConfig,
                on_epoch: EpochCallback | None = None,
                init: torch.nn.Module | None = None) -> TrainResult:
    """Train an LSTM on scaled windows with early stopping on the validation loss, from fresh
    weights or (``init``, a warm start) from a copy of ``init``'s.

    The whole data set is moved to the device once; batches are slices of a shuffled index,
    not a DataLoader.
    """
    if len(train) == 0 or len(val) == 0:
        raise TrainingError("no training or validation windows; provide a longer history")
    device = _prepare_device(cfg)
    loop = _new_loop(train, model_cfg, cfg, device, init)
    tr, va = _to_device(train, device), _to_device(val, device)
    history: list[dict[str, float]] = []
    stopper = EarlyStopping(cfg.patience)
    start = last_report = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        metrics = {"train_loss": _train_epoch(loop, *tr), **_validate_epoch(loop, *va)}
        _check_finite(epoch, metrics)
        history.append(metrics)
        if on_epoch:
            on_epoch(epoch, metrics)
        stop = stopper.update(epoch, metrics["val_loss"], loop.model)
        # The log (and so Prefect's run log) hears at most every PROGRESS_SECONDS.
        if epoch == 1 or stop or time.perf_counter() - last_report >= PROGRESS_SECONDS:
            last_report = time.perf_counter()
            log.info("epoch %d/%d: train_loss %.4g, val_loss %.4g (best %.4g at epoch %d)%s",
                     epoch, cfg.epochs, metrics["train_loss"], metrics["val_loss"],
                     stopper.best_loss, stopper.best_epoch, "; early stop" if stop else "")
        if stop:
            break
    seconds = time.perf_counter() - start
    loop.model.load_state_dict(stopper.best_state)
    loop.model.eval()
    return TrainResult(
        model=loop.model.cpu(), history=history, best_epoch=stopper.best_epoch,
        device=str(device), amp_dtype=str(loop.amp).replace("torch.", "") if loop.amp else None,
        seconds=seconds,
        windows_per_second=len(history) * len(train) / seconds if seconds > 0 else math.nan,
        stopped_early=len(history) < cfg.epochs,
    )


def refit(train: Split, epochs: int, model_cfg: ModelConfig, cfg: TrainConfig,
          init: torch.nn.Module | None = None) -> TrainResult:
    """Fit a model on ``train`` for exactly ``epochs`` epochs (no validation span): the serving
    refit on every row. From fresh weights (the epoch count early stopping chose), or from
    ``init``'s weights (a warm start; ``init`` itself is not changed)."""
    device = _prepare_device(cfg)
    loop = _new_loop(train, model_cfg, cfg, device, init)
    tr = _to_device(train, device)
    start = time.perf_counter()
    history = []
    for epoch in range(1, epochs + 1):
        history.append({"train_loss": _train_epoch(loop, *tr)})
        if not math.isfinite(history[-1]["train_loss"]):
            _check_finite(epoch, {**history[-1], "val_loss": 0.0})
    seconds = time.perf_counter() - start
    loop.model.eval()
    return TrainResult(
        model=loop.model.cpu(), history=history, best_epoch=epochs, device=str(device),
        amp_dtype=str(loop.amp).replace("torch.", "") if loop.amp else None, seconds=seconds,
        windows_per_second=epochs * len(train) / seconds if seconds > 0 else math.nan,
        stopped_early=False)
