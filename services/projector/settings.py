"""The projector's settings (pydantic-settings, env prefix KTRDR_, the project's shared vocabulary).

Built by the command (`ktrdr projector`, `ktrdr up`, tests, the bench), handed to the composition
root (services/bootstrap.py) and to `ProjectorService`; never read at import time. The batching
knobs carry a `projector_` prefix (KTRDR_PROJECTOR_BATCH_MAX, ...) so they cannot collide with
another service's settings in a shared environment.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from libs.events.settings import BrokerSettings, DatabaseSettings
from libs.settings import LogSettings, MetricsSettings


class ProjectorSettings(DatabaseSettings, BrokerSettings, LogSettings, MetricsSettings):
    """database_url, broker_url, topology_prefix and log_level come from the mixins."""

    # Group commit: one transaction appends (and folds) up to `batch_max` events...
    projector_batch_max: int = Field(default=500, ge=1, le=10_000)
    # ...gathered for at most this long once the first one arrived. Events that arrive while a
    # commit is in flight join the next one anyway (batches grow with the load by themselves:
    # the drain rate was the same with 0 and 1 ms), so a linger only adds latency at idle.
    projector_linger_ms: float = Field(default=0.0, ge=0, le=1_000)
    # Unacked messages the broker may hand over at once; must exceed batch_max, or a batch could
    # never fill while the previous one commits.
    projector_prefetch: int = Field(default=2_000, ge=1, le=65_535)
    # Backoff while the database is unreachable (doubling from min to max, retried forever:
    # nothing is acked before it is committed, so nothing is lost while we wait).
    projector_retry_min_s: float = Field(default=0.05, gt=0)
    projector_retry_max_s: float = Field(default=5.0, gt=0)
    # SIGTERM: how long in-flight batches may take to commit before their messages are requeued.
    projector_shutdown_grace_s: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _prefetch_covers_a_batch(self) -> ProjectorSettings:
        if self.projector_prefetch < self.projector_batch_max:
            raise ValueError(
                f"projector_prefetch ({self.projector_prefetch}) must be >= projector_batch_max "
                f"({self.projector_batch_max}): the broker only hands over `prefetch` unacked "
                "messages, so a larger batch could never fill"
            )
        if self.projector_retry_max_s < self.projector_retry_min_s:
            raise ValueError("projector_retry_max_s must be >= projector_retry_min_s")
        return self
