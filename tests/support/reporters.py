"""Test doubles for the pipeline's Reporter (also used by bench/pipeline.py)."""

from __future__ import annotations

from libs.pipeline.progress import BatchInfo, EpochInfo, Reporter


class RecordingReporter(Reporter):
    """Keeps every callback, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def phase_started(self, phase: str, index: int, total: int, message: str) -> None:
        self.calls.append(("phase", phase))

    def batch_progress(self, info: BatchInfo) -> None:
        self.calls.append(("batch", info))

    def epoch_completed(self, info: EpochInfo) -> None:
        self.calls.append(("epoch", info))
