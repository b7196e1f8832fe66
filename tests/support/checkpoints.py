"""An in-memory CheckpointSink (libs/pipeline/training/checkpoint.py) for tests and benches."""

from __future__ import annotations

from libs.pipeline.training.checkpoint import Position


class MemoryCheckpoints:
    """Keeps every checkpoint handed to it, in order; `latest()` is the last one kept."""

    def __init__(self, interval_s: float | None = None) -> None:
        self.interval_s = interval_s
        self.saved: list[tuple[Position, bytes]] = []

    def latest(self) -> bytes | None:
        return self.saved[-1][1] if self.saved else None

    def save(self, data: bytes, position: Position) -> None:
        self.saved.append((position, data))

    def positions(self) -> list[Position]:
        return [position for position, _ in self.saved]

    def up_to(self, position: Position) -> MemoryCheckpoints:
        """A copy holding only the checkpoints at or before `position`: what a process killed
        there had written."""
        copy = MemoryCheckpoints(self.interval_s)
        copy.saved = [(p, data) for p, data in self.saved if p <= position]
        return copy
