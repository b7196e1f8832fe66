"""The settings vocabulary every ktrdr process shares: environment variables prefixed KTRDR_.

Every settings class (the mixins in libs/events/settings.py and libs/pipeline/settings.py, and the
services' classes built from them) derives from `KtrdrSettings`, so the prefix and the policy on
unknown variables are written once. Settings are instantiated in composition roots only, never at
import time.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# extra="ignore": every process reads the same environment, full of the others' variables.
KTRDR_ENV = SettingsConfigDict(env_prefix="KTRDR_", extra="ignore")


class KtrdrSettings(BaseSettings):
    """The base of every ktrdr settings class: env prefix KTRDR_, other variables ignored."""

    model_config = KTRDR_ENV


class LogSettings(KtrdrSettings):
    """KTRDR_LOG_LEVEL and KTRDR_LOG_FORMAT (text | json, libs/logs.py) of a long-running
    service (api, projector, trainer)."""

    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"


class MetricsSettings(KtrdrSettings):
    """KTRDR_METRICS_PORT: where the projector or a trainer serves /metrics (None: nowhere).
    The API serves /metrics on its own port."""

    metrics_port: int | None = Field(default=None, ge=1, le=65535)


def redacted(url: str) -> str:
    """`url` with its password replaced by ***, for logs and start-up banners."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    if ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
