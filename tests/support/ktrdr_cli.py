"""Run the real `ktrdr` command in a subprocess against a database URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_ktrdr(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`ktrdr ARGS` with KTRDR_DATABASE_URL=url, from `cwd` (an unrelated directory proves the
    command finds its migrations and config without the repo as working directory)."""
    env = {**os.environ, "KTRDR_DATABASE_URL": url}
    code = "from services.cli.app import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
