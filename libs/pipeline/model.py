"""The MLP that maps fuzzy features to BUY/HOLD/SELL logits.

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
