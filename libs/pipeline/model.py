"""The networks: the MLP that maps a row of features to class logits (BUY/HOLD/SELL, or one
output for a regression head), and the LSTM/GRU sequence models that read a window of rows.

Randomness is drawn from explicit `torch.Generator`s, never from torch's global RNG: a trainer
that runs several trainings in threads must still give each request the same weights for the
same seed. Weight init repeats nn.Linear's default distributions with the generator, and
dropout masks come from a generator the train loop attaches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}
CLASS_NAMES: tuple[str, ...] = ("BUY", "HOLD", "SELL")


class SeededDropout(nn.Module):
    """Inverted dropout whose masks come from `self.generator` (global RNG when None)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout: must be in [0, 1), got {p}")
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        # The same three ops as ATen's CPU dropout, but with our generator.
        noise = torch.empty_like(x).bernoulli_(keep, generator=self.generator)
        return x * noise.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def build_model(
    input_size: int,
    hidden_layers: Sequence[int],
    activation: str = "relu",
    dropout: float = 0.0,
    num_classes: int = 3,
    *,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """Linear → activation → dropout per hidden layer, then a Linear to `num_classes` logits.

    With `generator`, every weight is drawn from it (same distributions as nn.Linear's defaults),
    so the initial weights depend on the seed only.
    """
    if input_size < 1:
        raise ValueError(f"input_size: must be >= 1, got {input_size}")
    if any(int(h) < 1 for h in hidden_layers):
        raise ValueError(f"hidden_layers: every size must be >= 1, got {list(hidden_layers)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation: unknown {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    width = input_size
    for size in hidden_layers:
        layers += [nn.Linear(width, int(size)), ACTIVATIONS[activation](), SeededDropout(dropout)]
        width = int(size)
    layers.append(nn.Linear(width, num_classes))
    model = nn.Sequential(*layers)
    if generator is not None:
        _init_linear_weights(model, generator)
    return model


def attach_dropout_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.generator = generator


@torch.no_grad()
def _init_linear_weights(model: nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear):
            # nn.Linear.reset_parameters: kaiming_uniform(a=sqrt(5)) ≡ U(-1/sqrt(fan_in), ..).
            bound = 1.0 / math.sqrt(module.in_features)
            module.weight.uniform_(-bound, bound, generator=generator)
            module.bias.uniform_(-bound, bound, generator=generator)


class SequenceNet(nn.Module):
    """LSTM or GRU over a window of feature rows (batch, sequence_length, features), read at
    its last step (the window's newest row) by a linear head.

    The recurrent layers are stacked by hand, one nn.LSTM/nn.GRU layer each, so the dropout
    between them is a SeededDropout (PyTorch's built-in inter-layer dropout draws from the
    global RNG, which threads of one trainer share)."""

    def __init__(
        self,
        kind: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        outputs: int,
    ) -> None:
        super().__init__()
        cell = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        self.recurrent = nn.ModuleList(cell(size, hidden_size, batch_first=True) for size in sizes)
        self.dropouts = nn.ModuleList(SeededDropout(dropout) for _ in sizes)
        self.head = nn.Linear(hidden_size, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, dropout in zip(self.recurrent, self.dropouts, strict=True):
            x, _ = layer(x)
            x = dropout(x)
        out: torch.Tensor = self.head(x[:, -1, :])
        return out


def build_network(
    architecture: dict[str, object],
    input_size: int,
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """The network an architecture record describes (metadata.json's `architecture`):
    `type` mlp (the default, for models saved before the field existed), lstm or gru, with
    `num_classes` outputs (1 for a regression head)."""
    kind = str(architecture.get("type", "mlp"))
    outputs = int(architecture.get("num_classes", len(CLASS_NAMES)))  # type: ignore[call-overload]
    dropout = float(architecture.get("dropout", 0.0))  # type: ignore[arg-type]
    if kind == "mlp":
        return build_model(
            input_size,
            list(architecture["hidden_layers"]),  # type: ignore[call-overload]
            str(architecture.get("activation", "relu")),
            dropout,
            outputs,
            generator=generator,
        )
    if kind not in ("lstm", "gru"):
        raise ValueError(f"model type: unknown {kind!r}; valid: mlp, lstm, gru")
    model = SequenceNet(
        kind,
        input_size,
        int(architecture["hidden_size"]),  # type: ignore[call-overload]
        int(architecture["num_layers"]),  # type: ignore[call-overload]
        dropout,
        outputs,
    )
    if generator is not None:
        _init_recurrent_weights(model, generator)
    return model


@torch.no_grad()
def _init_recurrent_weights(model: nn.Module, generator: torch.Generator) -> None:
    """nn.LSTM/nn.GRU's default init (every parameter U(-1/sqrt(hidden), 1/sqrt(hidden))) and
    nn.Linear's, drawn from `generator` in parameter order."""
    for module in model.modules():
        if isinstance(module, nn.LSTM | nn.GRU):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for parameter in module.parameters():
                parameter.uniform_(-bound, bound, generator=generator)
    _init_linear_weights(model, generator)
