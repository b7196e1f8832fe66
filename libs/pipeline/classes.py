"""The classes a model predicts and what each means for the trading read.

Signal labels (zigzag, forward_return, context, triple_barrier; and the sign of a regression
model's predicted return) are BUY / HOLD / SELL, held long / flat / short. Regime labels are
TREND_UP / TREND_DOWN / RANGE / VOLATILE: the trading read holds the trend (long in an up
trend, short in a down trend) and stays flat in a range or a volatile market.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LabelSpace:
    names: tuple[str, ...]
    positions: tuple[float, ...]  # the trading position each class holds
    long: int  # the class buy-and-hold predicts
    short: int  # the class the momentum baseline predicts when the close has fallen

    @property
    def count(self) -> int:
        return len(self.names)

    def position(self, classes: np.ndarray) -> np.ndarray:
        return np.asarray(self.positions)[np.asarray(classes, dtype=np.int64)]


SIGNALS = LabelSpace(("BUY", "HOLD", "SELL"), (1.0, 0.0, -1.0), long=0, short=2)
REGIMES = LabelSpace(
    ("TREND_UP", "TREND_DOWN", "RANGE", "VOLATILE"), (1.0, -1.0, 0.0, 0.0), long=0, short=1
)


def label_space(names: tuple[str, ...]) -> LabelSpace:
    """The space of a strategy's class names (regression models are read as signals)."""
    return REGIMES if names == REGIMES.names else SIGNALS
