"""A fake pipeline and a bus harness for the trainer's unit tests (in-memory bus, no torch)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from libs.events.bus.memory.adapter import InMemoryBus
from libs.events.bus.topology import Topology
from libs.events.catalog import DeviceInfo
from libs.events.settings import BrokerSettings
from libs.pipeline.progress import PHASES, BatchInfo, EpochInfo, TrainingCancelled
from libs.pipeline.request import SavedModel, TrainingRequest, TrainingResult
from services.bootstrap import open_stack
from services.trainer.service import TrainerService
from services.trainer.settings import TrainerSettings
from tests.support.event_tap import TappedEvents

CPU = DeviceInfo(type="cpu", name="test-cpu", threads=1)


class FakePipeline:
    """Calls the reporter like train_strategy() does. With `hold` set, the training phase keeps
    running batches (5 ms of "work" each) until `release` is set or the token cancels."""

    def __init__(self, *, epochs: int = 2, batches: int = 4, hold: bool = False) -> None:
        self.epochs, self.batches, self.hold = epochs, batches, hold
        self.release = threading.Event()
        self.calls: list[TrainingRequest] = []
        self.running = 0
        self.max_running = 0
        self.batches_run = 0
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def __call__(
        self, request: TrainingRequest, reporter: Any, token: Any, checkpoints: Any = None
    ) -> TrainingResult:
        with self._lock:
            self.calls.append(request)
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            return self._train(request, reporter, token)
        finally:
            with self._lock:
                self.running -= 1

    def _train(self, request: TrainingRequest, reporter: Any, token: Any) -> TrainingResult:
        for index, phase in enumerate(PHASES):
            if token.is_cancelled():
                raise TrainingCancelled(phase)
            reporter.phase_started(phase, index, len(PHASES), f"{phase}…")
            if self.error is not None and phase == "indicators":
                raise self.error
            if phase == "training":
                self._epochs(reporter, token)
        folder = Path(request.models_dir) / "s/1h_v1"
        folder.mkdir(parents=True, exist_ok=True)  # what the trainer publishes
        (folder / "model.pt").write_bytes(b"weights of " + str(request.training_id).encode())
        (folder / "metadata.json").write_text('{"strategy": "s"}')
        return TrainingResult(
            model=SavedModel("s", "1h", 1, folder, "ab" * 32, 123),
            training_metrics={"best_epoch": 1, "history": [0.5, 0.25]},
            test_metrics={"accuracy": 0.5},
            duration_s=0.1,
            device={"type": "cpu", "name": "test-cpu"},
        )

    def _epochs(self, reporter: Any, token: Any) -> None:
        epoch = 0
        while epoch < self.epochs or (self.hold and not self.release.is_set()):
            epoch += 1
            for batch in range(1, self.batches + 1):
                if self.hold:
                    self.release.wait(0.005)
                self.batches_run += 1
                reporter.batch_progress(
                    BatchInfo(epoch, self.epochs, batch, self.batches, 1.0, 0.5, 100.0, 0.5, 1.0)
                )
                if token.is_cancelled():
                    raise TrainingCancelled("training", epoch)
            reporter.epoch_completed(
                EpochInfo(epoch, self.epochs, 1.0, 0.5, 1.0, 0.5, 0.001, 0.01, epoch)
            )


class Harness(TappedEvents):
    """One in-memory broker, a tap recording every event, and trainers built on demand."""

    # Everything is in-process: short waits, and conditions on trainer state that no event
    # announces are re-checked every 10 ms.
    recheck_s, wait_s, terminal_wait_s = 0.01, 5.0, 5.0

    def __init__(self, tmp_path: Path) -> None:
        super().__init__()
        self.tmp_path = tmp_path
        self.topology = Topology(prefix=f"t{uuid.uuid4().hex[:8]}.", delivery_limit=3)
        self.services: list[TrainerService] = []
        self._exits = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Harness:
        broker = BrokerSettings(broker_url="memory://", topology_prefix=self.topology.prefix)
        stack = await self._exits.enter_async_context(
            open_stack(broker=broker, topology=self.topology, connect="now")
        )
        self.bus: InMemoryBus = stack.bus  # the in-memory one: tests look at its broker
        await self.bus.tap(["#"], self._record)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for service in self.services:
            await service.stop(grace_s=0)
        await self._exits.aclose()

    def settings(self, **overrides: Any) -> TrainerSettings:
        values: dict[str, Any] = {
            "trainer_id": f"t{len(self.services)}",
            "models_dir": self.tmp_path / "models",
            "artifacts_url": str(self.tmp_path / "artifacts"),
            "data_dir": self.tmp_path / "data",
            "batch_progress_interval_s": 0,
            "heartbeat_interval_s": 60,
        }
        values.update(overrides)
        return TrainerSettings(**values)

    async def trainer(self, pipeline: Callable[..., TrainingResult], **overrides: Any):
        service = TrainerService(
            self.settings(**overrides), self.bus, train_fn=pipeline, device=CPU
        )
        self.services.append(service)
        await service.start()
        return service
