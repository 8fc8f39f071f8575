"""Which Redis and PostgreSQL a developer's run or the test suite uses.

URLs in the environment win; else a usable server on the usual local port; else a private
server (:mod:`devtools.embedded_servers`) started under ``.data/``. Development and tests
only: production always names its servers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from devtools import DATA_DIR
from devtools.embedded_servers import (
    EmbeddedPostgres,
    EmbeddedRedis,
    EmbeddedServerError,
    start_embedded_postgres,
    start_embedded_redis,
)
from service.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServerError",
    "ResolvedServers",
    "database_url",
    "resolve_servers",
    "start_embedded_postgres",
    "start_embedded_redis",
]

# Set to 1 to ignore servers on the local ports (as on a machine without any); URLs given
# in REDIS_URL / DATABASE_URL are still used.
FORCE_EMBEDDED_VARIABLE = "TC_FORCE_EMBEDDED"
LOCAL_REDIS_URL = DEFAULT_REDIS_URL
LOCAL_POSTGRES_URL = DEFAULT_DATABASE_URL
APP_DATABASE = urlsplit(DEFAULT_DATABASE_URL).path.lstrip("/")
MIN_REDIS_VERSION = (6, 2)
MIN_POSTGRES_MAJOR = 15
_PROBE_TIMEOUT = 0.5


def database_url(url: str, database: str) -> str:
    """``url`` naming ``database`` instead (TCP or ``?host=/socket/dir`` URLs alike)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@dataclass
class ResolvedServers:
    """The servers a run uses, where each came from, and the embedded ones it holds."""

    redis_url: str | None
    database_url: str | None  # the application's database on the chosen server
    redis_origin: str = ""  # "environment", "local" or "embedded"
    database_origin: str = ""
    started: list[EmbeddedRedis | EmbeddedPostgres] = field(default_factory=list)

    def database_url_for(self, dbname: str) -> str:
        assert self.database_url is not None, "resolved without PostgreSQL"
        return database_url(self.database_url, dbname)

    def environ(self) -> dict[str, str]:
        """REDIS_URL and DATABASE_URL for a child process's environment."""
        pairs = (("REDIS_URL", self.redis_url), ("DATABASE_URL", self.database_url))
        return {name: url for name, url in pairs if url}

    def stop(self) -> None:
        """Release the embedded servers; each stops unless another process still uses it."""
        while self.started:
            self.started.pop().release()


def resolve_servers(
    environ: Mapping[str, str],
    data_dir: Path = DATA_DIR,
    *,
    redis: bool = True,
    postgres: bool = True,
) -> ResolvedServers:
    """Choose the servers: environment URLs, else local ports, else embedded ones."""
    forced = environ.get(FORCE_EMBEDDED_VARIABLE, "").lower() in ("1", "true", "yes")
    resolved = ResolvedServers(redis_url=None, database_url=None)

    def embedded_redis() -> tuple[EmbeddedRedis, str]:
        server = start_embedded_redis(data_dir / "redis")
        return server, server.url

    def embedded_postgres() -> tuple[EmbeddedPostgres, str]:
        server = start_embedded_postgres(data_dir / "postgres")
        return server, server.url_for(APP_DATABASE)

    try:
        if redis:
            resolved.redis_url, resolved.redis_origin = _choose(
                environ.get("REDIS_URL"),
                None if forced else LOCAL_REDIS_URL,
                _usable_local_redis,
                embedded_redis,
                resolved.started,
            )
        if postgres:
            resolved.database_url, resolved.database_origin = _choose(
                environ.get("DATABASE_URL"),
                None if forced else LOCAL_POSTGRES_URL,
                _usable_local_postgres,
                embedded_postgres,
                resolved.started,
            )
    except BaseException:
        resolved.stop()
        raise
    return resolved


def _choose(
    given: str | None,
    local: str | None,
    usable: Callable[[str], bool],
    start: Callable[[], tuple[EmbeddedRedis | EmbeddedPostgres, str]],
    started: list[EmbeddedRedis | EmbeddedPostgres],
) -> tuple[str, str]:
    """One server's URL and origin; an embedded server started is added to ``started``."""
    if given:
        return given, "environment"
    if local is not None and usable(local):
        return local, "local"
    server, url = start()
    started.append(server)
    return url, "embedded"


def _usable_local_redis(url: str) -> bool:
    """A Redis answers at ``url`` without a password, and is recent enough for our scripts."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=_PROBE_TIMEOUT, socket_timeout=_PROBE_TIMEOUT)
        with contextlib.closing(client):
            # redis-py types a command's answer as Awaitable[T] | T (one mixin for both clients).
            version = cast("dict[str, Any]", client.info("server"))["redis_version"]
    except (redis.RedisError, OSError):
        return False
    return tuple(int(part) for part in version.split(".")[:2]) >= MIN_REDIS_VERSION


def _usable_local_postgres(url: str) -> bool:
    """A PostgreSQL 15+ at ``url`` lets us in (trust auth); probed with the real driver."""
    import asyncpg

    async def probe() -> bool:
        conn = await asyncpg.connect(database_url(url, "postgres"), timeout=_PROBE_TIMEOUT * 2)
        try:
            major: int = conn.get_server_version().major
            return major >= MIN_POSTGRES_MAJOR
        finally:
            await conn.close()

    # In its own thread, so that callers inside a running event loop may probe too.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(asyncio.run, probe()).result()
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False
