"""A tiny webhook receiver for the tests: an HTTP/1.1 server on asyncio (one request per
connection), answering what the test tells it and keeping every request it got. It can be
down (nothing listening: connection refused) and come back on the same port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import msgspec


class Received(msgspec.Struct, frozen=True):
    headers: dict[str, str]  # names lower-cased
    body: bytes
    answered: int


class Receiver:
    def __init__(self) -> None:
        with socket.socket() as probe:  # a free port, nothing listening on it until start()
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/orders"
        self.status: Callable[[dict[str, str], bytes], int] = lambda headers, body: 200
        self.received: list[Received] = []
        self.delay = 0.0  # seconds before answering
        self._server: asyncio.Server | None = None

    def answer(self, status: int) -> None:
        self.status = lambda headers, body: status

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.answered < 300]

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.status(headers, body)
            self.received.append(Received(headers, body, status))
            writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
