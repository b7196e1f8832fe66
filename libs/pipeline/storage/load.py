"""A saved model read back for inference: the network in eval mode plus what it was trained on.

Only the state dict is unpickled, with `weights_only=True`: a model folder is data, and loading
one must never execute code from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from libs.pipeline.model import CLASS_NAMES, build_network


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # (rows, classes): P(BUY), P(HOLD), P(SELL) (or the regimes)
    classes: np.ndarray  # (rows,) 0=BUY 1=HOLD 2=SELL
    labels: list[str]  # "BUY" | "HOLD" | "SELL" per row
    # A regression model's predicted returns; its classes are their signs (BUY > 0, SELL < 0)
    # and its probabilities are empty.
    values: np.ndarray | None = None


@dataclass(frozen=True)
class LoadedModel:
    path: Path
    model: nn.Module  # eval mode, on CPU
    config: dict[str, Any]  # the resolved strategy snapshot it was trained with
    features: dict[str, Any]  # feature_names, lookback_periods, scaler
    metadata: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def feature_names(self) -> list[str]:
        return list(self.features["feature_names"])

    @property
    def sequence_length(self) -> int:
        return int(self.features.get("sequence_length", 1))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.features.get("class_names") or CLASS_NAMES)

    @torch.no_grad()
    def predict(self, X: np.ndarray) -> Prediction:
        """X: (rows, features), or (rows, sequence_length, features) for a sequence model
        (dataset.prediction_features builds either)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        width, length = len(self.feature_names), self.sequence_length
        shape = (width,) if length == 1 else (length, width)
        if X.shape[1:] != shape:
            expected = ", ".join(["rows", *(str(d) for d in shape)])
            raise ValueError(f"X: expected shape ({expected}), got {tuple(X.shape)}")
        output = self.model(torch.from_numpy(X))
        if self.features.get("output_format") == "regression":
            values = output[:, 0].double().numpy()
            classes = np.where(values > 0, 0, np.where(values < 0, 2, 1))
            return Prediction(
                np.zeros((len(values), 0)), classes, [CLASS_NAMES[c] for c in classes], values
            )
        probs = torch.softmax(output, dim=1).numpy()
        classes = probs.argmax(axis=1)
        return Prediction(probs, classes, [self.class_names[c] for c in classes])


def load_model(path: Path | str) -> LoadedModel:
    path = Path(path)
    required = ("model.pt", "metadata.json", "features.json")
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: not a saved model folder (missing {', '.join(missing)})")
    metadata = _read_json(path / "metadata.json")
    model = build_network(metadata["architecture"], int(metadata["input_size"]))
    state = torch.load(path / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return LoadedModel(
        path=path,
        model=model,
        config=_read_json(path / "config.json") if (path / "config.json").is_file() else {},
        features=_read_json(path / "features.json"),
        metadata=metadata,
        metrics=_read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {},
    )


def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
