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
        self.zero_init_head = zero_init_head
        if zero_init_head:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def reset_parameters(self, generator: torch.Generator) -> LSTMForecaster:
        """Initialise every weight from ``generator`` (torch's default schemes), never from the
        global RNG: concurrent trainings in one process stay independent and reproducible."""
        bound = 1.0 / self.lstm.hidden_size ** 0.5  # nn.LSTM's own default
        for weight in self.lstm.parameters():
            nn.init.uniform_(weight, -bound, bound, generator=generator)
        if self.zero_init_head:
            # For return/residual targets the head then starts at a constant output (the
            # training-mean return after scaling), and departs as far as the data support.
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        else:  # nn.Linear's own default
            nn.init.kaiming_uniform_(self.head.weight, a=5 ** 0.5, generator=generator)
            fan_in = self.head.in_features
            nn.init.uniform_(self.head.bias, -fan_in ** -0.5, fan_in ** -0.5, generator=generator)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Windows [B, T, F] -> forecasts [B, horizon] (scaled units)."""
        # x: [B, T, F]
        out, _ = self.lstm(x)  # [B, T, H * D]
        last = out[:, -1, :]  # [B, H * D]; for D=2 the backward half has read the whole window
        # The head runs in float32 even under mixed precision: bf16 keeps ~3 significant
        # digits, too coarse for a price (or a return) read off the output.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.head(last.float())  # [B, horizon]
