"""Checkpoints of the train loop: everything a run needs to continue exactly where it stopped.

The loop hands a checkpoint to a `CheckpointSink` at the end of every epoch, at most every
`sink.interval_s` within an epoch, and when its token stops it; a run given a sink whose
`latest()` holds a checkpoint continues from it. The pipeline knows nothing of where the bytes
go: the entry points implement the sink (the bus trainer on the artifact store).

A checkpoint holds the model, optimiser, scheduler and early-stopping state, the best epoch's
weights, the metric history, the running statistics of a half-done epoch and every random
state (the batch-order and dropout generators, torch's, numpy's and Python's global ones), so
on CPU a resumed run ends with bit-identical weights to a run never interrupted. Nothing in it
is specific to one architecture: `state_dict()` of any nn.Module, optimiser and scheduler.

Encoding: `torch.save` of plain containers and tensors, read back with `weights_only=True`
(no pickled code runs when a checkpoint is loaded).
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

FORMAT = 1


@dataclass(frozen=True, order=True)
class Position:
    """Where a checkpoint stands: `batch` batches of `epoch` (1-based) are done; batch 0 means
    the epoch has not started (the previous one is complete)."""

    epoch: int
    batch: int


class CheckpointSink(Protocol):
    """Where the train loop keeps checkpoints, implemented by the entry points."""

    # Checkpoint within an epoch at most this often (seconds); None: only at epoch ends (and
    # when the run is stopped).
    interval_s: float | None

    def latest(self) -> bytes | None:
        """The newest checkpoint of this run, or None to start from scratch."""
        ...

    def save(self, data: bytes, position: Position) -> None:
        """Keep `data` (atomically) as the checkpoint at `position`."""
        ...


class CheckpointMismatch(ValueError):
    """A checkpoint of another setup (other data, parameters or model) than this run's."""


def encode(payload: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **payload}, buffer)
    return buffer.getvalue()


def decode(data: bytes) -> dict[str, Any]:
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointMismatch("not a train-loop checkpoint of a format this code reads")
    return payload


def position_of(data: bytes) -> Position:
    """The position a checkpoint resumes at (decodes it: a corrupt one raises)."""
    payload = decode(data)
    return Position(int(payload["epoch"]), int(payload["batch"]))


def fingerprint(*parts: object) -> str:
    """A digest of what must be equal for a checkpoint to continue this run."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def global_rng_states() -> dict[str, Any]:
    """Torch's, numpy's and Python's global random states (code we do not own may draw from
    them; LSTM/GRU dropout on CPU does), as plain containers and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    assert isinstance(keys, np.ndarray)  # the legacy tuple form: (name, keys, pos, ...)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": _tuples_to_lists(random.getstate()),
    }


def restore_global_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_tuples_to_lists(v) for v in value]
    return value
