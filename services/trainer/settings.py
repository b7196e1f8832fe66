"""The trainer's settings (pydantic-settings, env prefix KTRDR_, the project's shared vocabulary).

Built in the composition root (`ktrdr trainer`, `ktrdr up`, tests, the bench) and handed to
`TrainerService`; never read at import time.
"""

from __future__ import annotations

import os
import secrets
import socket

from pydantic import Field, model_validator

from libs.artifacts.settings import ArtifactSettings
from libs.events.settings import BrokerSettings
from libs.pipeline.settings import DataDirs, DeviceSetting
from libs.settings import LogSettings, MetricsSettings

# RabbitMQ's default delivery-acknowledgement timeout (consumer_timeout): 30 minutes. A request
# held unacked longer than this is taken back by the broker and redelivered (docs/trainer.md).
BROKER_CONSUMER_TIMEOUT_S = 30 * 60


def default_trainer_id() -> str:
    """host + pid + a short random part: unique even for two trainers in one container."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class TrainerSettings(
    BrokerSettings, DataDirs, DeviceSetting, ArtifactSettings, LogSettings, MetricsSettings
):
    """broker_url, topology_prefix, data_dir, models_dir, device, artifacts_url (where
    checkpoints go), log_level and metrics_port come from the mixins."""

    trainer_id: str = Field(default_factory=default_trainer_id, min_length=1)
    # Trainings run at once; also the prefetch of each request-queue consumer.
    concurrency: int = Field(default=1, ge=1, le=64)
    heartbeat_interval_s: float = Field(default=10.0, gt=0)
    # BatchProgress is throttled at the source to one per interval (plus each epoch's last batch).
    batch_progress_interval_s: float = Field(default=0.25, ge=0)
    # SIGTERM: how long the running training may take to finish before it is given back.
    shutdown_grace_s: float = Field(default=30.0, ge=0)
    # The longest a trainer holds one delivery of a request (counted from delivery, which is
    # what the broker's consumer_timeout counts). Past it the run checkpoints the batch it is at
    # and hands over: it publishes a fresh copy of its request and acks the delivery, and the
    # next attempt (on any trainer) continues from that checkpoint -- so a training runs as long
    # as it needs, each delivery staying below the broker's timeout. None: no lease (`ktrdr up`
    # on its in-process bus, which has no such timeout).
    lease_s: float | None = Field(default=25 * 60, gt=0)
    # The broker's consumer_timeout as configured (docs/trainer.md); lease_s must stay below.
    broker_consumer_timeout_s: float = Field(default=BROKER_CONSUMER_TIMEOUT_S, gt=0)
    # Checkpoints: one at every epoch end, and within an epoch at most every this many seconds
    # (0: no checkpoints within epochs); the newest `checkpoint_keep` of a training are kept.
    checkpoint_interval_s: float = Field(default=300.0, ge=0)
    checkpoint_keep: int = Field(default=3, ge=1, le=100)
    # How long to wait for the control stream to catch up before deciding on a request.
    control_sync_timeout_s: float = Field(default=10.0, gt=0)
    # Training ids remembered as cancelled / finished (bounded memory; oldest forgotten first).
    control_memory: int = Field(default=100_000, ge=100)
    # Seconds between retries while the broker refuses to confirm a publish.
    publish_retry_s: float = Field(default=0.5, gt=0)

    @model_validator(mode="after")
    def _lease_fits_in_ack_timeout(self) -> TrainerSettings:
        if self.lease_s is not None and self.lease_s >= self.broker_consumer_timeout_s:
            raise ValueError(
                f"lease_s ({self.lease_s:g}) must be below broker_consumer_timeout_s "
                f"({self.broker_consumer_timeout_s:g}): a delivery still held when the broker's "
                "delivery-ack timeout fires is taken back (and counted against its delivery limit)"
            )
        return self
