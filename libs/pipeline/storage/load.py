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

from libs.pipeline.model import CLASS_NAMES, build_model


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # (rows, 3): P(BUY), P(HOLD), P(SELL)
    classes: np.ndarray  # (rows,) 0=BUY 1=HOLD 2=SELL
    labels: list[str]  # "BUY" | "HOLD" | "SELL" per row


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

    @torch.no_grad()
    def predict(self, X: np.ndarray) -> Prediction:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ValueError(
                f"X: expected shape (rows, {len(self.feature_names)}), got {tuple(X.shape)}"
            )
        probs = torch.softmax(self.model(torch.from_numpy(X)), dim=1).numpy()
        classes = probs.argmax(axis=1)
        return Prediction(probs, classes, [CLASS_NAMES[c] for c in classes])


def load_model(path: Path | str) -> LoadedModel:
    path = Path(path)
    required = ("model.pt", "metadata.json", "features.json")
    missing = [name for name in required if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path}: not a saved model folder (missing {', '.join(missing)})")
    metadata = _read_json(path / "metadata.json")
    arch = metadata["architecture"]
    model = build_model(
        int(metadata["input_size"]),
        arch["hidden_layers"],
        arch["activation"],
        float(arch.get("dropout", 0.0)),
        int(arch.get("num_classes", len(CLASS_NAMES))),
    )
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
