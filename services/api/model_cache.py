"""A small LRU of loaded models, so predictions do not re-read model.pt on every request.

Keyed by folder and model.pt's mtime: a model folder is immutable once renamed into place, but
keying on mtime keeps a hand-replaced file from being served stale. Thread-safe: predictions run
in worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any


class ModelCache:
    def __init__(self, max_models: int = 8) -> None:
        self.max_models = max_models
        self._items: OrderedDict[tuple[Path, float], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> Any:
        from libs.pipeline.storage.load import load_model

        key = (path, (path / "model.pt").stat().st_mtime)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        loaded = load_model(path)  # outside the lock: loading may take a while
        with self._lock:
            self._items[key] = loaded
            while len(self._items) > self.max_models:
                self._items.popitem(last=False)
        return loaded
