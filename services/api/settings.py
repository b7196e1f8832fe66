"""The API's settings (pydantic-settings, env prefix KTRDR_, the project's shared vocabulary).

Built in the composition root (`ktrdr api`, `ktrdr up`, tests) and handed to `create_app()`;
never read at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/ktrdr.db"


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    broker_url: str = "memory://"  # "memory://" = the in-process bus; "amqp://..." = RabbitMQ
    # Name prefix of the bus topology (exchanges/queues); tests and e2e runs use a unique one.
    topology_prefix: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    strategies_dir: Path = Path("strategies")
    data_dir: Path = Path("data")
    models_dir: Path = Path("models")

    # Seconds between SSE keep-alive comments on an idle stream.
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    # Seconds between store polls while following a stream: the safety net under the notifier.
    sse_poll_s: float = Field(default=2.0, gt=0)
    # Size limits at the edge (DESIGN §8).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_strategy_yaml_bytes: int = Field(default=256 * 1024, ge=1024)
    max_predict_bars: int = Field(default=5_000, ge=1)
    # Run the outbox relay inside the API process (standalone `ktrdr api`).
    run_relay: bool = True
