"""Settings fields of the event infrastructure: the database and the bus (env prefix KTRDR_).

Mixins for each service's pydantic-settings class, so a shared field is declared, defaulted and
explained once: `class ApiSettings(DatabaseSettings, BrokerSettings, ...)`. Like every settings
class, they are instantiated in composition roots only, never at import time.
"""

from __future__ import annotations

from libs.settings import KtrdrSettings

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/ktrdr.db"
# No database: the composition root builds an in-memory store (unit tests, one process only).
IN_MEMORY_DATABASE_URL = "memory://"
IN_PROCESS_BROKER_URL = "memory://"


class DatabaseSettings(KtrdrSettings):
    """KTRDR_DATABASE_URL: postgresql+asyncpg://..., sqlite+aiosqlite:///... (embedded), or
    "memory://" (an in-memory store, no I/O: unit tests)."""

    database_url: str = DEFAULT_DATABASE_URL


class BrokerSettings(KtrdrSettings):
    """KTRDR_BROKER_URL and KTRDR_TOPOLOGY_PREFIX: which bus, and the names on it."""

    # "memory://" = the in-process bus (one process only); "amqp://..." = RabbitMQ.
    broker_url: str = IN_PROCESS_BROKER_URL
    # Name prefix of the bus topology (exchanges/queues); tests and e2e runs use a unique one.
    # Every process of one deployment must use the same prefix: it is how they find each other.
    topology_prefix: str = ""
