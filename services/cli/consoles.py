"""Rich consoles for the local commands. Piped or redirected output gets a wide fixed width
(unless COLUMNS says otherwise) so tables are not squeezed into 80 columns and cut with "…"."""

from __future__ import annotations

import os

from rich.console import Console

PIPED_WIDTH = 200


def make_console(*, stderr: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console
