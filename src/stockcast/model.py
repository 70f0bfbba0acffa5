"""The LSTM forecaster."""

from __future__ import annotations

import torch
from torch import nn


class LSTMForecaster(nn.Module):
    """Stacked (optionally bidirectional) LSTM; a linear head maps the last hidden state to
    ``horizon`` outputs."""

    def __init__(
        self,
        input_size: int = 1,
        hidden_size: int = 50,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        horizon: int = 1,
        zero_init_head: bool = False,
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            # torch only applies dropout between stacked layers.
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), horizon)
        if zero_init_head:
            # For return/residual targets an output of 0 is the persistence forecast: start
            # there, so the model only departs from it as far as the data support.
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Windows [B, T, F] -> forecasts [B, horizon] (scaled units)."""
        # x: [B, T, F]
        out, _ = self.lstm(x)  # [B, T, H * D]
        last = out[:, -1, :]  # [B, H * D]; for D=2 the backward half has read the whole window
        # The head runs in float32 even under mixed precision: bf16 keeps ~3 significant
        # digits, too coarse for a price (or a return) read off the output.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.head(last.float())  # [B, horizon]
