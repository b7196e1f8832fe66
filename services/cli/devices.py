"""The one device vocabulary of `ktrdr train` and `ktrdr submit`: any | cpu | cuda | mps (the
API's `DeviceClass`; annotate an option with it and Typer accepts and shows exactly these).

`any` is a request any trainer may take; run locally, it is what KTRDR_DEVICE calls `auto`
(CUDA, else MPS, else CPU).
"""

from __future__ import annotations

from libs.events.catalog import DeviceClass
from libs.pipeline.settings import DeviceChoice

__all__ = ["DeviceClass", "local_device"]


def local_device(device: DeviceClass) -> DeviceChoice:
    """The device `train_strategy()` is asked for."""
    return "auto" if device == "any" else device
