"""Settings fields the services share (DESIGN §6: one vocabulary, env prefix KTRDR_).

Mixins for each service's pydantic-settings class, so a shared field is declared, defaulted and
explained once: `class ApiSettings(DatabaseSettings, BrokerSettings, ...)`. Like every settings
class, they are instantiated in composition roots only, never at import time.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

# extra="ignore": every service reads the same environment, full of the others' variables.
KTRDR_ENV = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/ktrdr.db"
IN_PROCESS_BROKER_URL = "memory://"


class DatabaseSettings(BaseSettings):
    """KTRDR_DATABASE_URL: postgresql+asyncpg://... or sqlite+aiosqlite:///... (embedded)."""

    model_config = KTRDR_ENV

    database_url: str = DEFAULT_DATABASE_URL


class BrokerSettings(BaseSettings):
    """KTRDR_BROKER_URL and KTRDR_TOPOLOGY_PREFIX: which bus, and the names on it."""

    model_config = KTRDR_ENV

    # "memory://" = the in-process bus (one process only); "amqp://..." = RabbitMQ.
    broker_url: str = IN_PROCESS_BROKER_URL
    # Name prefix of the bus topology (exchanges/queues); tests and e2e runs use a unique one.
    topology_prefix: str = ""
