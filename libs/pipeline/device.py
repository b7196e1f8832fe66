"""Which torch device a training runs on, and what the trainer reports about it.

Preference is CUDA > MPS > CPU. `KTRDR_DEVICE` (or an explicit argument, which wins) forces one:
"auto", "cpu", "cuda", "mps". Asking for a device this machine does not have is an error, never a
silent fallback -- a request routed to a CUDA trainer must not quietly train on CPU.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import torch

from libs.pipeline.settings import DeviceChoice

VALID_DEVICES: tuple[str, ...] = get_args(DeviceChoice)  # ("auto", "cpu", "cuda", "mps")


class DeviceError(ValueError):
    """The requested device is unknown or not available here."""


def available_devices() -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def usable_cpu_count() -> int:
    """CPUs this process may really use: affinity mask, capped by a cgroup v2 CPU quota
    (a container limited to 2 CPUs on a 64-core host must not start 64 threads)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


@dataclass(frozen=True)
class DeviceManager:
    """Resolves the device once; `torch_device` is what the pipeline moves tensors to."""

    type: str
    name: str

    @classmethod
    def resolve(cls, requested: str | None = None) -> DeviceManager:
        choice = (requested or os.environ.get("KTRDR_DEVICE") or "auto").strip().lower()
        if choice not in VALID_DEVICES:
            raise DeviceError(
                f"device: unknown device {choice!r}; valid: {', '.join(VALID_DEVICES)}"
            )
        present = available_devices()
        if choice == "auto":
            choice = present[0]
        elif choice not in present:
            raise DeviceError(
                f"device: {choice!r} was requested but is not available on this machine "
                f"(available: {', '.join(present)})"
            )
        return cls(type=choice, name=_device_name(choice))

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.type)

    def capabilities(self) -> dict[str, Any]:
        caps: dict[str, Any] = {
            "type": self.type,
            "name": self.name,
            "torch_version": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        if self.type == "cuda":
            props = torch.cuda.get_device_properties(0)
            caps["cuda_capability"] = f"{props.major}.{props.minor}"
            caps["memory_bytes"] = int(props.total_memory)
            caps["cuda_version"] = torch.version.cuda
        return caps


# Intra-op threads for training when nothing says otherwise. The strategies' MLPs (tens of units,
# batches of 32-512) have ops too small to split across threads; extra OpenMP threads only add
# barrier waits, and on shared CPUs every wait can cost a scheduler time slice. Measured on the
# project's 2 shared cores ([32, 16] MLP, batch 64): ~1.4 ms per batch with 1 thread, ~10-30 ms
# with 2. Wide layers or big batches can ask for more with KTRDR_TORCH_THREADS.
DEFAULT_TRAINING_THREADS = 1


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads: `threads`, else KTRDR_TORCH_THREADS, else
    DEFAULT_TRAINING_THREADS -- never more than this process may use. Called by composition
    roots (the CLI, the trainer), never at import time."""
    env = os.environ.get("KTRDR_TORCH_THREADS", "").strip()
    if threads is None and env:
        try:
            threads = int(env)
        except ValueError:
            raise DeviceError(f"KTRDR_TORCH_THREADS: {env!r} is not a whole number") from None
    wanted = threads if threads is not None else DEFAULT_TRAINING_THREADS
    if wanted < 1:
        raise DeviceError(f"threads: must be >= 1, got {wanted}")
    wanted = min(wanted, usable_cpu_count())
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted


def _device_name(kind: str) -> str:
    if kind == "cuda":
        return torch.cuda.get_device_name(0)
    if kind == "mps":
        return "Apple Metal (MPS)"
    import platform

    return platform.processor() or platform.machine() or "cpu"
