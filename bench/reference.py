"""The common way, as the seed notebooks do it: Python-loop windows of MinMax-scaled closes, a
2 x 50 LSTM, Dataset + DataLoader(batch 32, shuffle), MSE, per-epoch validation. The yardstick
the throughput and time-to-quality cases measure stockcast against."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from stockcast.config import ModelConfig, WindowConfig
from stockcast.evaluation.point_metrics import score_forecasts
from stockcast.modeling.windows import prepare_windows

SEED_MODEL = ModelConfig(hidden_size=50, num_layers=2, target="price")
SEED_WINDOW = WindowConfig(scaler="minmax", features=("Close",))  # the tutorials: the close only


def reference_windows(values: np.ndarray, seq: int) -> tuple[np.ndarray, np.ndarray]:
    """Python-loop window building, as the seed notebooks do it."""
    xs, ys = [], []
    for i in range(seq, len(values)):
        xs.append(values[i - seq:i])
        ys.append(values[i])
    return np.array(xs, dtype=np.float32)[..., None], np.array(ys, dtype=np.float32)[:, None]


class TutorialLSTM(nn.Module):
    """The seed notebooks' network: 2 x 50 LSTM, a linear head on the last step, one output."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 50, num_layers=2, batch_first=True)
        self.head = nn.Linear(50, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0][:, -1, :])  # [B, T, 1] -> [B, 1]


def reference_train(x_train, y_train, x_val, y_val, epochs: int, batch: int = 32, seed: int = 0):
    """Dataset + DataLoader(batch 32, shuffle) + per-epoch validation: the common loop."""
    torch.manual_seed(seed)
    model = TutorialLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    train_dl = DataLoader(TensorDataset(torch.tensor(x_train), torch.tensor(y_train)),
                          batch_size=batch, shuffle=True)
    val_dl = DataLoader(TensorDataset(torch.tensor(x_val), torch.tensor(y_val)), batch_size=batch)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in train_dl:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            sum(loss_fn(model(xb), yb).item() for xb, yb in val_dl)
    return model, time.perf_counter() - start


def reference_seconds(frame, epochs: int, threads: int) -> float:
    """The reference loop's training seconds on stockcast's own train/validation windows."""
    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)
    torch.set_num_threads(threads)
    x, y = reference_windows(data.transformer.scaler.transform(frame[["Close"]].to_numpy())[:, 0],
                             SEED_WINDOW.sequence_length)
    offset = SEED_WINDOW.sequence_length - 1
    train, val = data.train.origins - offset, data.val.origins - offset
    return reference_train(x[train], y[train], x[val], y[val], epochs)[1]


def seed_pipeline(frame, epochs: int):
    """The seed tutorials end to end: MinMax prices fit on train rows, loop windows, reference
    trainer, scored in price units on our test windows."""
    data = prepare_windows(frame, SEED_WINDOW, SEED_MODEL)  # same splits and test windows
    scaled = data.transformer.scaler.transform(frame[["Close"]].to_numpy())[:, 0]
    x, y = reference_windows(scaled, SEED_WINDOW.sequence_length)
    offset = SEED_WINDOW.sequence_length - 1
    train, val, test = (s.origins - offset for s in (data.train, data.val, data.test))
    model, fit = reference_train(x[train], y[train], x[val], y[val], epochs)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor(x[test])).numpy()
    pred = data.to_prices(data.test, out)
    return fit, score_forecasts(pred, data.actual_prices(data.test), data.last_close(data.test))
