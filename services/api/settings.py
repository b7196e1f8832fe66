"""The API's settings (pydantic-settings, env prefix KTRDR_, the project's shared vocabulary).

Built in the composition root (`ktrdr api`, `ktrdr up`, tests) and handed to `create_app()`;
never read at import time. The shared fields (database_url, broker_url, topology_prefix,
strategies_dir, data_dir, models_dir, artifacts_url) come from the mixins in libs/.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, field_validator

from libs.artifacts.settings import ArtifactSettings
from libs.events.settings import BrokerSettings, DatabaseSettings
from libs.pipeline.config.limits import HyperParameterLimits
from libs.pipeline.settings import DataDirs, StrategyDirs


class ApiSettings(
    DatabaseSettings,
    BrokerSettings,
    StrategyDirs,
    DataDirs,
    HyperParameterLimits,
    ArtifactSettings,
):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    # Seconds between SSE keep-alive comments on an idle stream.
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    # Seconds between store polls while following a stream: the safety net under the notifier.
    sse_poll_s: float = Field(default=2.0, gt=0)
    # How often an open stream re-reads its caller's key: a revoke or an expiry ends it within this.
    sse_key_recheck_s: float = Field(default=5.0, gt=0)
    # Size limits at the edge.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_strategy_yaml_bytes: int = Field(default=256 * 1024, ge=1024)
    max_predict_bars: int = Field(default=5_000, ge=1)
    # Run the outbox relay inside the API process (standalone `ktrdr api`).
    run_relay: bool = True

    # Serve /docs and /openapi.json without a key (every other route but the probes needs one).
    public_docs: bool = True
    # Serve /metrics without a key, for Prometheus (counts and timings, no training data).
    public_metrics: bool = True
    # An admin key (`ktrdr_<key id>_<secret>`) created on start if it is not stored yet, for
    # scripted setups (KTRDR_BOOTSTRAP_API_KEY).
    bootstrap_api_key: SecretStr | None = None
    # Failed authentications allowed per client address: a burst, then this many a minute.
    auth_failure_burst: int = Field(default=10, ge=1)
    auth_failures_per_minute: float = Field(default=10.0, gt=0)
    # Reverse proxies whose X-Forwarded-For / -Proto are believed ("10.0.0.5,10.0.0.6" or "*").
    # None: the client address is the socket's peer, so no header can dodge the failure limit.
    forwarded_allow_ips: str | None = None

    def proxy_options(self) -> dict[str, Any]:
        """uvicorn's proxy-header options for these settings."""
        if self.forwarded_allow_ips is None:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": self.forwarded_allow_ips}

    @field_validator("bootstrap_api_key", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # compose passes an unset variable as ""
