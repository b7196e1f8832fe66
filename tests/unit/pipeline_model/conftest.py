"""Synthetic tensors for the model-side tests: a learnable 3-class problem, small and fast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from libs.pipeline.model import build_model


def make_problem(rows: int, features: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features)).astype(np.float32)
    y = np.where(X[:, 0] > 0.5, 0, np.where(X[:, 0] < -0.5, 2, 1)).astype(np.int64)
    return X, y


@pytest.fixture
def problem():
    X, y = make_problem(400, seed=0)
    Xv, yv = make_problem(100, seed=1)
    return X, y, Xv, yv


def new_model(seed: int = 0, features: int = 6, dropout: float = 0.1):
    return build_model(
        features, [8, 4], "relu", dropout, generator=torch.Generator().manual_seed(seed)
    )
