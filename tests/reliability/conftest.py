"""One rig for the whole reliability suite (session-scoped: its servers and processes start
once, about half a minute); every test leaves it whole again and checks every invariant over all
that the rig has seen so far."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.rig import Rig, start_rig, stop_rig
from tests.support.private_servers import require_private_servers


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    require_private_servers()
    started = start_rig(tmp_path_factory.mktemp("reliability"))
    try:
        yield started
    finally:
        stop_rig(started)
