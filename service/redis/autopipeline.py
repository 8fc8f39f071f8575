"""Auto-pipelining over one multiplexed connection: the Redis calls made in one event-loop
tick leave in one write, and their replies come back, in order, on the same connection.

Under load, many requests issue their script calls in the same tick; sending them at once
replaces N round trips with one. Each call still gets its own reply or error, and a
caller's own pipeline (the reserve path's meta + script) stays contiguous and in order.
Standalone Redis only: on a Cluster the client routes commands itself, so it is used as is.

Why not redis-py's pipeline for the batch: it costs a Pipeline object, a pool checkout, a
task and a coroutine per reply, about as much CPU per add-to-cart as the cart logic itself
(docs/performance.md). Here one connection per process carries every call: commands are
packed by hiredis and written at once, and the socket's bytes go straight to a hiredis
reader, whose replies resolve the waiting calls first in, first out (as Redis answers a
connection's commands in order). redis-py still makes the connection (URL, TLS, AUTH,
SELECT) and decodes replies with its own response callbacks.

Timeouts: every batch must be answered within the client's socket timeout (one timer at a
time checks the oldest batch). A batch not fully answered in time fails every call still
waiting on the connection with TimeoutError, and the connection is dropped, so a late
reply can never be taken for another call's. A lost connection fails its waiting calls
with ConnectionError; the next call opens a new one.
A call that failed that way may or may not have run, as with any client.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands import AsyncCoreCommands
from redis.exceptions import ConnectionError
from redis.utils import str_if_bytes

_NEVER_DECODE = "NEVER_DECODE"
_EMPTY_RESPONSE = "EMPTY_RESPONSE"

# (command name, options for its response callback, the caller's future)
_Call = tuple[str, dict[str, Any], asyncio.Future[Any]]


def _packed(args: tuple[Any, ...]) -> bytes:
    if isinstance(args[0], str) and " " in args[0]:  # "SCRIPT LOAD" is two words
        args = (*args[0].split(), *args[1:])
    packed: bytes = hiredis.pack_command(args)
    return packed


class AutoPipelined(AsyncCoreCommands):
    """Offers redis-py's command methods; every command joins the current tick's batch."""

    def __init__(self, client: Redis) -> None:
        self.client = client  # makes the connection; its callbacks decode the replies
        self.timeout: float | None = client.connection_pool.connection_kwargs.get("socket_timeout")
        self._callbacks = client.response_callbacks
        self._calls: list[_Call] = []
        self._commands: list[bytes] = []
        self._scheduled = False
        self._link: _Link | None = None
        self._opening: asyncio.Future[_Link] | None = None
        self._sending: set[asyncio.Task[None]] = set()  # batches waiting for a connection

    async def aclose(self) -> None:
        """Drop the connection (the given client is its owner's to close)."""
        if self._link is not None:
            self._link.close(ConnectionError("the client was closed"))
            self._link = None

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await self._enqueue([(args, options)])[0]

    def pipeline(self, transaction: bool = False) -> _Batch:
        if transaction:
            raise ValueError("auto-pipelined calls are never transactional")
        # abstract: redis-py's CommandsProtocol declares a connection_pool, which a batch has no use for.
        return _Batch(self)  # type: ignore[abstract]

    def _enqueue(self, commands: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[asyncio.Future[Any]]:
        loop = asyncio.get_running_loop()
        packed = [_packed(args) for args, _ in commands]  # a command that cannot be sent queues none
        futures: list[asyncio.Future[Any]] = []
        for (args, options), command in zip(commands, packed, strict=True):
            future = loop.create_future()
            self._commands.append(command)
            self._calls.append((str_if_bytes(args[0]), options, future))
            futures.append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return futures

    def _flush(self) -> None:
        calls, commands = self._calls, self._commands
        self._calls, self._commands, self._scheduled = [], [], False
        link = self._link
        if link is not None and link.alive:
            link.send(calls, commands)
        else:
            # Kept until done: the event loop holds only a weak reference to a task.
            task = asyncio.ensure_future(self._send_when_open(calls, commands))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_when_open(self, calls: list[_Call], commands: list[bytes]) -> None:
        try:
            link = await self._open()
        except BaseException as exc:  # no connection: every caller of the batch learns it
            for _, _, future in calls:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else ConnectionError(repr(exc)))
            return
        link.send(calls, commands)

    async def _open(self) -> _Link:
        """The live connection; one is opened at a time, whoever asks."""
        if self._link is not None and self._link.alive:
            return self._link
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._connect())
            self._opening.add_done_callback(lambda _: setattr(self, "_opening", None))
        return await asyncio.shield(self._opening)

    async def _connect(self) -> _Link:
        connection = self.client.connection_pool.make_connection()
        await connection.connect()  # redis-py's handshake: AUTH, SELECT, HELLO
        self._link = _Link(connection, self.timeout, self._callbacks)
        return self._link


class _Link(asyncio.Protocol):
    """One connection: writes batches, matches replies to calls in order."""

    def __init__(self, connection: AbstractConnection, timeout: float | None, callbacks: Any) -> None:
        self.connection = connection  # kept: it owns the transport's socket
        self.transport: asyncio.WriteTransport = connection._writer.transport  # type: ignore[union-attr]
        self.transport.set_protocol(self)  # bytes now come here, not to redis-py's stream
        self.timeout = timeout
        self.callbacks = callbacks
        # Each command's callback as found in redis-py's case-insensitive table (whose every
        # look-up upper-cases the name): looked up once per command name, not per reply.
        self.callback_of: dict[str, Any] = {}
        self.reader = hiredis.Reader()  # error replies come back as hiredis.ReplyError values
        self.waiting: deque[_Call] = deque()
        self.sent = 0
        self.answered = 0
        # (calls sent up to and including the batch, when it must be answered by), oldest
        # first; one timer at a time walks it.
        self.deadlines: deque[tuple[int, float]] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.alive = True

    def send(self, calls: list[_Call], commands: list[bytes]) -> None:
        self.waiting.extend(calls)
        self.sent += len(calls)
        self.transport.write(b"".join(commands))
        if self.timeout is not None:
            loop = asyncio.get_running_loop()
            self.deadlines.append((self.sent, loop.time() + self.timeout))
            if self.timer is None:
                self.timer = loop.call_at(self.deadlines[0][1], self._check_deadlines)

    def _check_deadlines(self) -> None:
        self.timer = None
        deadlines = self.deadlines
        while deadlines and deadlines[0][0] <= self.answered:
            deadlines.popleft()
        if not self.alive or not deadlines:
            return
        loop = asyncio.get_running_loop()
        if deadlines[0][1] <= loop.time():
            self.close(TimeoutError(f"Redis did not answer within {self.timeout} s"))
        else:
            self.timer = loop.call_at(deadlines[0][1], self._check_deadlines)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while self.alive and (reply := self.reader.gets()) is not False:
            if not self.waiting:
                self.close(ConnectionError("Redis sent a reply no call was waiting for"))
                return
            self.answered += 1
            self._deliver(self.waiting.popleft(), reply)

    def _deliver(self, call: _Call, reply: Any) -> None:
        name, options, future = call
        if future.done():  # the caller was cancelled meanwhile
            return
        if isinstance(reply, hiredis.ReplyError):
            if _EMPTY_RESPONSE in options:
                future.set_result(options[_EMPTY_RESPONSE])
            else:
                future.set_exception(BaseParser.parse_error(str(reply)))
            return
        try:
            callback = self.callback_of[name]
        except KeyError:
            callback = self.callback_of[name] = self.callbacks.get(name)
        if callback is None:
            future.set_result(reply)
            return
        kwargs = {k: v for k, v in options.items() if k not in ("keys", _NEVER_DECODE, _EMPTY_RESPONSE)}
        try:
            future.set_result(callback(reply, **kwargs))
        except Exception as exc:
            future.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ConnectionError(f"Redis closed the connection: {exc!r}" if exc else "Redis closed the connection"))

    def close(self, error: Exception) -> None:
        """Fail every waiting call with ``error`` and drop the connection."""
        if not self.alive:
            return
        self.alive = False
        if self.timer is not None:
            self.timer.cancel()
        waiting, self.waiting = self.waiting, deque()
        for _, _, future in waiting:
            if not future.done():
                future.set_exception(error)
        self.transport.abort()
        self.connection._reader = self.connection._writer = None  # redis-py must not close it again


class _Batch(AsyncCoreCommands):
    """A caller's own pipeline: its commands join the tick's batch together, in order."""

    def __init__(self, owner: AutoPipelined) -> None:
        self._owner = owner
        self._commands: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def execute_command(self, *args: Any, **options: Any) -> _Batch:
        self._commands.append((args, options))
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        futures = self._owner._enqueue(self._commands)
        self._commands = []
        # Awaited one by one rather than gathered: they are answered by the same read, so
        # at most the first await waits, and no gathering future is built per call.
        results: list[Any] = []
        try:
            for future in futures:
                try:
                    results.append(await future)
                except Exception as exc:
                    results.append(exc)
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return list(results)
