"""The CLI's key: --api-key, then KTRDR_API_KEY, then the user's config file, which must be
readable by its owner only; `ktrdr keys save` writes it so."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.api.apikeys import generate_key
from services.cli.app import app
from services.cli.client.config import ConfigError, read_config
from services.cli.client.http import ApiClient, ApiError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cfg" / "ktrdr" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.delenv("KTRDR_CONFIG", raising=False)
    monkeypatch.delenv("KTRDR_API_KEY", raising=False)
    monkeypatch.delenv("KTRDR_API_URL", raising=False)
    return path


def sent_key(client: ApiClient) -> str | None:
    value = client.http.headers.get("authorization")
    return value.removeprefix("Bearer ") if value else None


def test_keys_save_writes_a_0600_file_the_client_reads(config: Path, monkeypatch) -> None:
    key = generate_key()
    result = CliRunner().invoke(app, ["keys", "save", key, "--api-url", "http://h:1"])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    with ApiClient.from_options(None, None) as client:
        assert sent_key(client) == key and client.base_url == "http://h:1"
    env_key = generate_key()
    monkeypatch.setenv("KTRDR_API_KEY", env_key)  # the environment wins over the file...
    with ApiClient.from_options(None, None) as client:
        assert sent_key(client) == env_key
    with ApiClient.from_options(None, "explicit") as client:  # ...and the option over both
        assert sent_key(client) == "explicit"


def test_a_config_file_others_can_read_is_refused(config: Path) -> None:
    config.parent.mkdir(parents=True)
    config.write_text(f'api_key = "{generate_key()}"\n')
    os.chmod(config, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        read_config()
    with pytest.raises(ApiError, match="readable by other users"):
        ApiClient.from_options(None, None)


def test_keys_save_refuses_something_that_is_not_a_key(config: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "save", "hunter2"])
    assert result.exit_code == 2 and "ktrdr_" in result.output
    assert not config.exists()
