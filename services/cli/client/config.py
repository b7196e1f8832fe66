"""The CLI's own config file: where the API is and which key to send, for one user.

`$XDG_CONFIG_HOME/ktrdr/config.toml` (default `~/.config/ktrdr/config.toml`; KTRDR_CONFIG names
another file), e.g.

    api_url = "http://127.0.0.1:8000"
    api_key = "ktrdr_..."

KTRDR_API_URL / KTRDR_API_KEY and the --api-url / --api-key options win over it. The file holds
a secret, so it must be readable by its owner only (mode 0600): one that others can read is
refused with the command to fix it, and `ktrdr keys save` writes it that way.
"""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path


class ConfigError(Exception):
    """The config file cannot be used (its permissions, its syntax)."""


def config_path() -> Path:
    explicit = os.environ.get("KTRDR_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ktrdr" / "config.toml"


def read_config(path: Path | None = None) -> dict[str, str]:
    path = path or config_path()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} is readable by other users; run `chmod 600 {path}`")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None
    return {k: v for k, v in data.items() if k in {"api_url", "api_key"} and isinstance(v, str)}


def save_config(values: dict[str, str], path: Path | None = None) -> Path:
    """Merge `values` into the config file, created with mode 0600 (its folder 0700)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    merged = {**(read_config(path) if path.exists() else {}), **values}
    text = "".join(f"{k} = {_toml_string(v)}\n" for k, v in sorted(merged.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
