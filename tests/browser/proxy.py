"""A TCP relay between the browser and the service that a test can cut: `block()` closes every
open connection (an SSE stream included) and refuses new ones until `unblock()`, as a network
outage would. Threads, not asyncio: the browser tests drive Playwright's sync API."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class CuttableProxy:
    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._blocked = False
        self._closed = False
        self.cuts = 0  # connections closed by block()
        self._thread = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                refused = self._blocked
            if refused:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                self._close(s)

    def _close(self, s: socket.socket) -> None:
        with self._lock:
            self._open.discard(s)
        with suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        s.close()

    def block(self) -> None:
        with self._lock:
            self._blocked = True
            victims = list(self._open)
        self.cuts += len(victims)
        for s in victims:
            self._close(s)

    def unblock(self) -> None:
        with self._lock:
            self._blocked = False

    @contextmanager
    def outage(self) -> Iterator[None]:
        self.block()
        try:
            yield
        finally:
            self.unblock()

    def close(self) -> None:
        self._closed = True
        self.block()
        self.server.close()
