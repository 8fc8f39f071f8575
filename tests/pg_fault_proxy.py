"""A TCP proxy in front of PostgreSQL that delays, loses or cuts the answer to COMMIT.

For tests of what a client does when PostgreSQL's answer to ``COMMIT`` comes late, never
comes, or the connection dies around it. The proxy listens on ``127.0.0.1:<free port>``,
runs its own event loop in a daemon thread (so in-process asyncpg clients and other
processes alike can use it) and forwards to the real server over TCP or a Unix socket.

It speaks just enough of the v3 protocol: it answers SSLRequest / GSSENCRequest itself with
``N`` (so it always sees plaintext), then frames the client's messages and recognises a
COMMIT: a Simple Query whose SQL, without surrounding whitespace and semicolons, is
``COMMIT`` in any case (asyncpg's ``Transaction.commit()`` sends ``COMMIT;`` that way), or
the Execute of a portal bound to a statement parsed from such SQL (extended protocol). A
statement that commits on its own (its SQL starts with ``-- commits on its own``: the
checkout's order without a promo use) commits at the Sync that follows its Execute (several
such Executes before one Sync commit together: group commit), so that Sync is the COMMIT.
The server's bytes are never parsed, only copied, held or discarded.

It never rewrites a message, never talks to the server on its own except for the Terminate
that ends a dropped connection, and is for tests only: no TLS, no authentication of its own.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from service.orders.sql import COMMITS_ON_ITS_OWN

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
TERMINATE = b"X\x00\x00\x00\x04"
_CHUNK = 1 << 16
_MAX_STARTUP = 10_000  # the server's own limit on a startup packet
_DROP_DRAIN_SECONDS = 10.0  # how long a dropped connection waits for the server to finish
_COUNTERS = {"delay": "commits_delayed", "drop": "commits_dropped", "cut": "commits_cut"}
T = TypeVar("T")
_COMMITS_ON_ITS_OWN = COMMITS_ON_ITS_OWN.encode()


@dataclass(frozen=True)
class Upstream:
    """Where the real server is: a TCP host, or a Unix socket directory (starting with '/')."""

    host: str
    port: int = 5432

    @classmethod
    def from_url(cls, url: str) -> Upstream:
        """The server of a ``postgresql://`` URL, ``?host=/socket/dir`` URLs included."""
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        host = query.get("host", "").split(",")[0] or parts.hostname
        if not host:
            raise ValueError(f"no host in {url!r}")
        return cls(host, parts.port or int(query.get("port", "").split(",")[0] or 5432))

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self.host}/.s.PGSQL.{self.port}")
        return await asyncio.open_connection(self.host, self.port)


def url_via(proxy: PgFaultProxy, database_url: str) -> str:
    """``database_url`` going through ``proxy``: same user, database and options."""
    parts = urlsplit(database_url)
    user = parts.netloc.rpartition("@")[0]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("host", "port")]
    netloc = f"{user}@127.0.0.1:{proxy.port}" if user else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query)))


def is_commit_sql(sql: bytes) -> bool:
    """COMMIT, or a statement sent to commit on its own (the checkout's order without a
    promo use: service/orders/sql.py INSERT_ORDER_ALONE), whose answer is its commit's."""
    return commit_kind(sql) is not None


def commit_kind(sql: bytes) -> str | None:
    """How ``sql`` commits: "commit" for COMMIT (where it runs), "alone" for a statement that
    commits on its own (at the Sync after its Execute, with the others before that Sync),
    None when it does not."""
    if sql.strip(b" \t\r\n\f\v;").upper() == b"COMMIT":
        return "commit"
    return "alone" if sql.startswith(_COMMITS_ON_ITS_OWN) else None


def split_messages(buffer: bytes | bytearray) -> tuple[list[bytes], int]:
    """The complete ``type + int32 length + body`` messages at the start of ``buffer``,
    and how many bytes they take; a partial message at the end waits for more bytes."""
    messages, at = [], 0
    while len(buffer) - at >= 5:
        length = int.from_bytes(buffer[at + 1 : at + 5], "big")
        if length < 4:
            raise ValueError(f"message length {length}")
        end = at + 1 + length
        if end > len(buffer):
            break
        messages.append(bytes(buffer[at:end]))
        at = end
    return messages, at


class CommitDetector:
    """Tells, message by message, which of one client's messages is a COMMIT."""

    def __init__(self) -> None:
        self._statements: dict[bytes, str] = {}  # prepared from a committing statement: its kind
        self._portals: dict[bytes, str] = {}  # bound to such a statement: its kind
        self._commit_at_sync = False  # a statement that commits on its own ran: the next Sync commits

    def is_commit(self, message: bytes) -> bool:
        kind = message[:1]
        if kind == b"S":
            commit, self._commit_at_sync = self._commit_at_sync, False
            return commit
        if kind not in (b"Q", b"P", b"B", b"E"):
            return False  # the cheap, common case: Describe, CopyData...
        names = message[5:].split(b"\0", 2)
        if kind == b"Q":
            return is_commit_sql(names[0])
        if kind == b"P":  # Parse: statement name, query
            _mark(self._statements, names[0], commit_kind(names[1]))
        elif kind == b"B":  # Bind: portal name, statement name
            _mark(self._portals, names[0], self._statements.get(names[1]))
        elif kind == b"E":  # Execute: portal name
            portal = self._portals.get(names[0])
            if portal == "commit":
                return True
            self._commit_at_sync = self._commit_at_sync or portal == "alone"
        return False


def _mark(names: dict[bytes, str], name: bytes, kind: str | None) -> None:
    if kind is None:
        names.pop(name, None)
    else:
        names[name] = kind


@dataclass
class _Rule:
    mode: str = "pass"  # "pass", "delay", "drop" or "cut"
    seconds: float = 0.0
    times: int | None = None  # COMMITs left before it reverts to "pass"; None: all
    dark: bool = False  # drop: PostgreSQL becomes unreachable at that moment


class _Link:
    """One client connection and its server connection."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.hold_until = 0.0  # loop time before which server bytes are held
        self.dropping = False  # discard server bytes; the client is cut once the server is done

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()


class PgFaultProxy:
    """The proxy; ``start()`` (or ``with``) it, then point a client at ``.port``."""

    def __init__(self, upstream: Upstream | str) -> None:
        self._url = upstream if isinstance(upstream, str) else None
        self.upstream = Upstream.from_url(upstream) if isinstance(upstream, str) else upstream
        self.port = 0
        self.database_url: str | None = None  # set by start() when given a URL
        self.commit_seen = threading.Event()  # set at each COMMIT; clear it to wait again
        self.commits_seen = self.commits_delayed = self.commits_dropped = self.commits_cut = 0
        self.connections_accepted = self.connections_refused = self.encryption_refused = 0
        self._lock = threading.Condition()
        self._rule = _Rule()
        self._refusing = False
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    # -- life cycle (any thread but the proxy's) --
    def start(self) -> int:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pg-fault-proxy", daemon=True)
        self._thread.start()
        self._server = self._run(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self.database_url = url_via(self, self._url) if self._url else None
        return self.port

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> PgFaultProxy:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def url_via(self, database_url: str) -> str:
        return url_via(self, database_url)

    # -- faults (any thread but the proxy's own; for COMMITs seen after the call) --
    def pass_through(self) -> None:
        """Forward everything (the default)."""
        self._set(_Rule())

    def delay_commit_answer(self, seconds: float, times: int | None = None) -> None:
        """Forward COMMIT; hold the server's bytes until ``seconds`` after it, then deliver them.
        ``times`` here and below: only the next N COMMITs, then back to pass."""
        self._set(_Rule("delay", seconds, times))

    def drop_commit_answer(self, times: int | None = None, *, then_unreachable: bool = False) -> None:
        """Forward COMMIT and a Terminate; when the server has committed and closed, cut
        the client without its answer (so the client's error means: committed, unknown to it).
        ``then_unreachable``: at that COMMIT, every other connection is cut and new ones are
        refused (PostgreSQL gone, as the client sees it) until ``refuse_connections(False)``."""
        self._set(_Rule("drop", 0.0, times, then_unreachable))

    def cut_before_commit(self, times: int | None = None) -> None:
        """Close both sides instead of forwarding COMMIT: the transaction rolls back."""
        self._set(_Rule("cut", 0.0, times))

    def refuse_connections(self, refuse: bool = True) -> None:
        """Accept and at once close new connections; live ones go on."""
        self._refusing = refuse

    def cut_all(self) -> None:
        """Close every live connection, both sides, now."""
        self._run(self._cut_all())

    @property
    def mode(self) -> str:
        return self._rule.mode

    def wait_for_commits(self, count: int, timeout: float) -> bool:
        """Block until ``count`` COMMITs in all were seen; False after ``timeout`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: self.commits_seen >= count, timeout)

    def _set(self, rule: _Rule) -> None:
        with self._lock:
            self._rule = rule

    def _next_rule(self) -> _Rule:
        with self._lock:
            rule = self._rule
            if rule.times is not None:
                rule.times -= 1
                if rule.times <= 0:
                    self._rule = _Rule()
            self.commits_seen += 1
            if rule.mode in _COUNTERS:
                setattr(self, _COUNTERS[rule.mode], getattr(self, _COUNTERS[rule.mode]) + 1)
            self._lock.notify_all()
        self.commit_seen.set()
        return rule

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "start() the proxy first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    # -- the proxy's own thread --
    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _cut_all(self) -> None:
        for link in list(self._links):
            link.abort()

    async def _serve(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self._refusing:
            with self._lock:
                self.connections_refused += 1
            client.transport.abort()
            return
        with self._lock:
            self.connections_accepted += 1
        task, link = asyncio.current_task(), _Link(client)
        assert task is not None
        self._tasks.add(task)
        self._links.add(link)
        try:
            startup = await self._read_startup(reader, client)
            server_reader, link.server = await self.upstream.open()
            link.server.write(startup)
            await self._relay(link, reader, server_reader)
        except (OSError, EOFError, ValueError, asyncio.CancelledError):
            pass  # a side went away or spoke nonsense, or the proxy stops: the connection ends
        finally:
            link.abort()
            self._links.discard(link)
            self._tasks.discard(task)

    async def _read_startup(self, reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> bytes:
        """The client's StartupMessage (or CancelRequest); SSL and GSS encryption refused here."""
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            if not 8 <= length <= _MAX_STARTUP:
                raise ValueError(f"startup packet of {length} bytes")
            body = await reader.readexactly(length - 8)
            if code not in (SSL_REQUEST, GSSENC_REQUEST):
                return head + body
            with self._lock:
                self.encryption_refused += 1
            client.write(b"N")
            await client.drain()

    async def _relay(self, link: _Link, client: asyncio.StreamReader, server: asyncio.StreamReader) -> None:
        upward = asyncio.ensure_future(self._client_to_server(link, client))
        downward = asyncio.ensure_future(_server_to_client(link, server))
        try:
            done, _ = await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
            for pump in done:
                pump.result()  # a pump's error ends the connection (and a bug is not hidden)
            if link.dropping:  # the COMMIT is on its way: the client is cut once it is done
                await asyncio.wait({downward}, timeout=_DROP_DRAIN_SECONDS)
                return
            for writer in (link.client, link.server):
                if writer is not None:
                    writer.close()  # graceful: bytes already written still go out
                    await writer.wait_closed()
        finally:
            upward.cancel()
            downward.cancel()
            await asyncio.gather(upward, downward, return_exceptions=True)

    async def _client_to_server(self, link: _Link, reader: asyncio.StreamReader) -> None:
        assert link.server is not None
        detector, pending = CommitDetector(), bytearray()
        while chunk := await reader.read(_CHUNK):
            pending += chunk
            messages, used = split_messages(pending)
            del pending[:used]
            forward = bytearray()
            for message in messages:
                if detector.is_commit(message):
                    rule = self._next_rule()
                    if rule.mode == "cut":
                        link.server.write(forward)
                        link.abort()
                        return
                    if rule.mode == "drop":
                        link.dropping = True
                        if rule.dark:
                            self._refusing = True
                            for other in list(self._links - {link}):
                                other.abort()
                        link.server.write(forward + message + TERMINATE)
                        return
                    if rule.mode == "delay":
                        link.hold_until = asyncio.get_running_loop().time() + rule.seconds
                forward += message
            link.server.write(forward)
            await link.server.drain()


async def _server_to_client(link: _Link, reader: asyncio.StreamReader) -> None:
    loop = asyncio.get_running_loop()
    while data := await reader.read(_CHUNK):
        if not link.dropping and (wait := link.hold_until - loop.time()) > 0:
            await asyncio.sleep(wait)
        if link.dropping:
            continue
        link.client.write(data)
        await link.client.drain()
