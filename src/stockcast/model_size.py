"""The size of a configuration's network as a whole, worked out before anything is built: its
parameters and the memory one training batch takes. Each setting has its own bound in the
config; together they can still ask for billions of weights (4,096 hidden units x 16 layers,
bidirectional), which would fill the machine's memory minutes into a run instead of being
refused at once."""

from __future__ import annotations

from dataclasses import dataclass

# A network this size trains in minutes per ticker on a CPU; the defaults have ~32 thousand.
MAX_PARAMETERS = 20_000_000
# What one batch's forward and backward pass may hold (the activations the LSTM keeps per
# step, layer and direction, and their gradients).
MAX_BATCH_BYTES = 4 * 2**30
FLOAT_BYTES = 4


@dataclass(frozen=True)
class ModelSize:
    """The parameters and one training batch's activation memory, in bytes."""

    parameters: int
    batch_bytes: int

    def problem(self) -> str | None:
        """Why this network is refused, with what to change, or None."""
        if self.parameters > MAX_PARAMETERS:
            return (f"the network would have {self.parameters:,} parameters "
                    f"({self.parameters * FLOAT_BYTES / 2**30:.1f} GiB of weights, three times "
                    f"that while training), over stockcast's bound of {MAX_PARAMETERS:,}: lower "
                    "model.hidden_size or model.num_layers (or set model.bidirectional: false)")
        if self.batch_bytes > MAX_BATCH_BYTES:
            return (f"one training batch would hold about {self.batch_bytes / 2**30:.1f} GiB of "
                    f"activations, over stockcast's bound of {MAX_BATCH_BYTES / 2**30:.0f} GiB: "
                    "lower train.batch_size, window.sequence_length or model.hidden_size")
        return None


def model_size(features: int, hidden: int, layers: int, bidirectional: bool, horizon: int,
               sequence: int, batch: int) -> ModelSize:
    """torch.nn.LSTM's parameter count (4 gates: input and recurrent weights, two biases, per
    layer and direction) plus the head's, and the activations a batch keeps: per step, layer
    and direction the four gates, the cell and the hidden state, doubled for their gradients."""
    directions = 2 if bidirectional else 1
    parameters = 0
    for layer in range(layers):
        inputs = features if layer == 0 else hidden * directions
        parameters += directions * (4 * hidden * (inputs + hidden) + 8 * hidden)
    parameters += (hidden * directions + 1) * 2 * horizon
    batch_bytes = 2 * batch * sequence * layers * directions * 6 * hidden * FLOAT_BYTES
    return ModelSize(parameters, batch_bytes)
