"""A TCP proxy in front of Postgres that counts round trips: each time the client speaks again
after the server has answered is one more. Counts every connection through it together."""

from __future__ import annotations

import asyncio
import contextlib


class RoundTripCounter:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.round_trips = 0
        self._server: asyncio.Server | None = None
        self._answered: dict[int, bool] = {}  # per connection: did the server speak last?

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        key = id(writer)
        self._answered[key] = True

        def client_spoke() -> None:
            if self._answered[key]:
                self.round_trips += 1
            self._answered[key] = False

        def server_spoke() -> None:
            self._answered[key] = True

        await asyncio.gather(
            _pipe(reader, up_writer, client_spoke), _pipe(up_reader, writer, server_spoke)
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, spoke) -> None:
    try:
        while data := await reader.read(65536):
            spoke()
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
