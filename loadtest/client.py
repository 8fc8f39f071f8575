"""A minimal HTTP/1.1 keep-alive client on asyncio protocols and httptools' parser.

One ``Connection`` carries one request at a time (no pipelining), reconnects when the
server closes, and keeps only the response headers a load test reads. It must never
buffer more than one response or hide a failed request: every failure raises.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import httptools
import msgspec

# Response headers worth keeping (lower-case); the rest are parsed and dropped.
KEPT_HEADERS = frozenset({b"x-cart-token", b"content-type", b"retry-after"})


class ConnectionFailed(Exception):
    """The connection broke, or could not be made, before a whole response arrived."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[bytes, bytes], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> object:
        """The decoded body, or None when it is not JSON."""
        try:
            return msgspec.json.decode(self.body) if self.body else None
        except msgspec.DecodeError:
            return None

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower().encode())
        return value.decode("latin-1") if value is not None else None


class Target:
    """Where requests go: host, port and the Host header, parsed once from a base URL."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// base URLs are supported, not {base_url!r}")
        if not parts.hostname:
            raise ValueError(f"base URL has no host: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path_prefix = parts.path.rstrip("/")
        default_port = parts.port is None or parts.port == 80
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        self.host_line = f"Host: {self.host_header}\r\n"
        self.base_url = base_url.rstrip("/")


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def encode_request(target: Target, method: str, path: str, headers: dict[str, str], body: bytes | None) -> bytes:
    # One f-string per request: this runs for every request the tool sends.
    extra = "".join([f"{name}: {value}\r\n" for name, value in headers.items()]) if headers else ""
    start = f"{method} {target.path_prefix}{path} HTTP/1.1\r\n{target.host_line}{extra}"
    if body is not None:
        head = f"{start}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode("latin-1") + body
    if method in _BODY_METHODS:
        return f"{start}Content-Length: 0\r\n\r\n".encode("latin-1")
    return f"{start}\r\n".encode("latin-1")


class _ResponseProtocol(asyncio.Protocol):
    """Feeds bytes to httptools and resolves one waiting future per response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.closed = False
        self._headers: dict[bytes, bytes] = {}
        self._body: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionFailed(f"bad HTTP response: {exc}"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionFailed(f"connection closed: {exc or 'by the server'}"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._headers = {}
        self._body = []

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in KEPT_HEADERS:
            self._headers[name] = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        waiter.set_result(Response(self.parser.get_status_code(), self._headers, body))
        if not self.parser.should_keep_alive() and self.transport is not None:
            self.closed = True
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Connection:
    """One keep-alive connection; ``send`` is awaited by one caller at a time."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout
        self._protocol: _ResponseProtocol | None = None
        self.reconnects = 0
        self._waiter: asyncio.Future[Response] | None = None  # a watched request's
        self._sent_at = 0.0

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(_ResponseProtocol, self.target.host, self.target.port),
                self.timeout,
            )
        except (TimeoutError, OSError) as exc:
            raise ConnectionFailed(f"cannot connect to {self.target.base_url}: {exc!r}") from exc
        self._protocol = protocol

    async def send(self, raw_request: bytes, *, watched: bool = False) -> Response:
        """Write one request and wait for its answer.

        ``watched``: the caller calls ``expire`` now and then instead of this call setting
        a timer per request (a timer costs a few µs of the ~50 a request costs here).
        """
        protocol = self._protocol
        if protocol is None or protocol.closed:
            if protocol is not None:
                self.reconnects += 1
            await self.connect()
            protocol = self._protocol
            assert protocol is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Response] = loop.create_future()
        protocol.waiter = waiter
        assert protocol.transport is not None
        protocol.transport.write(raw_request)
        if watched:
            self._sent_at, self._waiter = time.monotonic(), waiter
            try:
                return await waiter
            finally:
                self._waiter = None
        # A plain timer rather than asyncio.wait_for: a third of the cost per request.
        timer = loop.call_later(self.timeout, self._time_out, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def expire(self, now: float) -> None:
        """Fail a watched request that has waited longer than the timeout."""
        waiter = self._waiter
        if waiter is not None and now - self._sent_at > self.timeout:
            self._time_out(waiter)

    def _time_out(self, waiter: asyncio.Future[Response]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError(f"no answer within {self.timeout} s"))
            # The answer may still come; this connection can no longer be trusted.
            self.close()

    def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.closed = True
            protocol.transport.close()
