"""The LSTM forecaster: a location and a scale for every output step (a Gaussian head)."""

from __future__ import annotations

import math

import torch
from torch import nn

# Scale corrections beyond e^±5 of the EWMA volatility are not plausible: clamped, so one
# bad batch cannot blow the likelihood up.
MAX_LOG_CORRECTION = 5.0


class LSTMForecaster(nn.Module):
    """Stacked (optionally bidirectional) LSTM; a linear head maps the last hidden state to
    ``horizon`` locations and ``horizon`` log scale corrections (relative to a base scale the
    caller supplies: the EWMA volatility at the forecast origin)."""

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
        self.horizon = horizon
        self.lstm = nn.LSTM(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            # torch only applies dropout between stacked layers.
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            batch_first=True,
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), 2 * horizon)
        self.zero_init_head = zero_init_head
        if zero_init_head:
            self._zero_head()

    def _zero_head(self) -> None:
        # Location 0 is the training-mean return (return targets are standardised); scale
        # correction 0 is the EWMA band itself. The model departs from both only as far as the
        # data support.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def reset_parameters(self, generator: torch.Generator) -> LSTMForecaster:
        """Initialise every weight from ``generator`` (torch's default schemes), never from the
        global RNG: concurrent trainings in one process stay independent and reproducible."""
        bound = 1.0 / math.sqrt(self.lstm.hidden_size)  # nn.LSTM's own default
        for weight in self.lstm.parameters():
            nn.init.uniform_(weight, -bound, bound, generator=generator)
        if self.zero_init_head:
            self._zero_head()
        else:  # nn.Linear's own default for the location; the scale correction starts at 0
            nn.init.kaiming_uniform_(self.head.weight, a=math.sqrt(5), generator=generator)
            fan_in = self.head.in_features
            nn.init.uniform_(self.head.bias, -fan_in**-0.5, fan_in**-0.5, generator=generator)
            with torch.no_grad():
                self.head.weight[self.horizon:] = 0.0
                self.head.bias[self.horizon:] = 0.0
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Windows [B, T, F] -> [B, 2 * horizon]: locations, then log scale corrections
        (scaled units; see ``split_output``)."""
        # x: [B, T, F]
        out, _ = self.lstm(x)  # [B, T, H * D]
        last = out[:, -1, :]  # [B, H * D]; for D=2 the backward half has read the whole window
        # The head runs in float32 even under mixed precision: bf16 keeps ~3 significant
        # digits, too coarse for a price (or a return) read off the output.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.head(last.float())  # [B, 2 * horizon]


def split_output(out: torch.Tensor, base: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model output [B, 2h] and base scales [B, h] -> location [B, h] and scale [B, h]."""
    h = out.shape[1] // 2
    correction = out[:, h:].clamp(-MAX_LOG_CORRECTION, MAX_LOG_CORRECTION)
    return out[:, :h], base * torch.exp(correction)
