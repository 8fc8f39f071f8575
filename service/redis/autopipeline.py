"""Auto-pipelining: the Redis calls made in one event-loop tick leave as one pipeline.

Under load, many requests issue their script calls in the same tick; sending them as one
non-transactional pipeline replaces N round trips (and N socket writes and reads through
redis-py's connection pool) with one. Each call still gets its own reply or error, and a
caller's own pipeline (the reserve path's meta + script) stays contiguous and in order.
Standalone Redis only: on a Cluster the client routes commands itself, so it is used as is.

Timeouts: redis-py arms a timer for every reply it reads, which costs more than packing
the command. The batches go through a twin of the given client whose connections read
without one, and one timer of the same length (the client's socket timeout) guards the
whole batch; a batch that runs out fails every call in it with TimeoutError, and redis-py
drops the connection it was reading from.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.commands import AsyncCoreCommands

_Call = tuple[tuple[Any, ...], dict[str, Any], asyncio.Future]


class AutoPipelined(AsyncCoreCommands):
    """Offers redis-py's command methods; every command joins the current tick's batch."""

    def __init__(self, client: Redis) -> None:
        pool = client.connection_pool
        self.timeout: float | None = pool.connection_kwargs.get("socket_timeout")
        self._owns_client = type(client) is Redis and self.timeout is not None
        if self._owns_client:
            kwargs = {**pool.connection_kwargs, "socket_timeout": None}
            client = Redis(connection_pool=ConnectionPool(
                connection_class=pool.connection_class, max_connections=pool.max_connections, **kwargs))
        else:
            self.timeout = None  # the client's own per-read timeouts apply
        self.client = client
        self._pending: list[_Call] = []
        self._scheduled = False

    async def aclose(self) -> None:
        """Close the twin client's connections (the given client is its owner's to close)."""
        if self._owns_client:
            await self.client.aclose()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        return await self._enqueue([(args, options)])[0]

    def pipeline(self, transaction: bool = False) -> _Batch:
        if transaction:
            raise ValueError("auto-pipelined calls are never transactional")
        return _Batch(self)

    def _enqueue(self, commands: list[tuple[tuple[Any, ...], dict[str, Any]]]) -> list[asyncio.Future]:
        loop = asyncio.get_running_loop()
        futures = []
        for args, options in commands:
            future = loop.create_future()
            self._pending.append((args, options, future))
            futures.append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return futures

    def _flush(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        asyncio.ensure_future(self._send(batch))

    async def _send(self, batch: list[_Call]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for args, options, _ in batch:
            pipe.execute_command(*args, **options)
        try:
            async with asyncio.timeout(self.timeout):
                results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every caller learns it
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), result in zip(batch, results):
            if future.done():  # the caller was cancelled meanwhile
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


class _Batch(AsyncCoreCommands):
    """A caller's own pipeline: its commands join the tick's batch together, in order."""

    def __init__(self, owner: AutoPipelined) -> None:
        self._owner = owner
        self._commands: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def execute_command(self, *args: Any, **options: Any) -> _Batch:  # type: ignore[override]
        self._commands.append((args, options))
        return self

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        futures = self._owner._enqueue(self._commands)
        self._commands = []
        results = await asyncio.gather(*futures, return_exceptions=True)
        if raise_on_error:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        return list(results)
