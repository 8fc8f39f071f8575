"""The fixtures that find or start the real servers the tests use, all in this one place.

Servers are resolved once a session: REDIS_URL / DATABASE_URL, else the local ports, else
embedded ones (TC_FORCE_EMBEDDED=1 skips the local ports). On them the suite owns the
database ``ticket_cart_test`` (dropped and re-created at session start) and the Redis keys
under ``tct:``; it never flushes a Redis database nor touches any other key, so it can run
against a developer's servers. Tests that stop or restart a server use a private one.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from service.db.migrate import apply_migrations
from service.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ResolvedServers,
    resolve_servers,
    start_embedded_postgres,
    start_embedded_redis,
)
from service.settings import DATA_DIR, Settings

TEST_DATABASE = "ticket_cart_test"
TEST_KEY_PREFIX = "tct:"
TEST_SECRETS = {
    "ADMIN_API_KEY": "test-admin-key",
    "CART_TOKEN_SECRET": "test-cart-token-secret",
    "JWT_SECRET": "test-jwt-secret",
}
# Every table the migrations create but schema_migrations: what clean_state empties.
STATE_TABLES = ("ticket_tiers", "orders", "order_items", "tickets", "promo_codes",
                "promo_customer_uses", "promo_redemptions")

Server = TypeVar("Server", EmbeddedRedis, EmbeddedPostgres)


@pytest.fixture(scope="session")
def servers() -> Iterator[ResolvedServers]:
    """The Redis and PostgreSQL of this session; embedded ones stop when it ends."""
    resolved = resolve_servers(os.environ)
    yield resolved
    resolved.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(servers: ResolvedServers) -> str:
    """URL of ``ticket_cart_test``, fresh for this session and migrated."""
    await _on_server(servers, f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)',
                     f'CREATE DATABASE "{TEST_DATABASE}"')
    url = servers.database_url_for(TEST_DATABASE)
    await apply_migrations(url)
    return url


@pytest.fixture(scope="session")
def settings(servers: ResolvedServers, database_url: str) -> Settings:
    """Settings on the test servers, with the test key prefix and fixed secrets."""
    assert servers.redis_url is not None
    return Settings.from_env({
        "REDIS_URL": servers.redis_url,
        "DATABASE_URL": database_url,
        "KEY_PREFIX": TEST_KEY_PREFIX,
        "APP_ENV": "development",
        **TEST_SECRETS,
    })


@pytest_asyncio.fixture(loop_scope="session")
async def redis(servers: ResolvedServers) -> AsyncIterator[Redis]:
    """A client of the test Redis (bytes in and out), new for each test."""
    client = Redis.from_url(servers.redis_url, decode_responses=False)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """One asyncpg pool on ``ticket_cart_test`` for the whole session."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def clean_state(redis: Redis, db_pool: asyncpg.Pool) -> None:
    """Start the test from nothing: no test-prefix keys in Redis, empty tables.

    Opt in with ``pytestmark = pytest.mark.usefixtures("clean_state")`` or by asking for it;
    pure unit tests need no server and should not pay for one.
    """
    await delete_keys(redis, TEST_KEY_PREFIX)
    await db_pool.execute(f"TRUNCATE {', '.join(STATE_TABLES)} RESTART IDENTITY CASCADE")


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_database(servers: ResolvedServers) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """``await scratch_database(name)``: URL of ``ticket_cart_test_<name>``, a database that
    does not exist (an earlier run's is dropped first); dropped again after the test."""
    names: list[str] = []

    async def absent_database(name: str) -> str:
        names.append(f"{TEST_DATABASE}_{name}")
        await _on_server(servers, f'DROP DATABASE IF EXISTS "{names[-1]}" WITH (FORCE)')
        return servers.database_url_for(names[-1])

    yield absent_database
    for name in names:
        await _on_server(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def delete_keys(client: Redis, prefix: str) -> int:
    """UNLINK every key under ``prefix`` (SCAN, never FLUSHDB: the server may be shared)."""
    pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 500:
            deleted += await client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await client.unlink(*batch)
    return deleted


@pytest.fixture
def private_redis() -> Iterator[Callable[..., EmbeddedRedis]]:
    """``private_redis(name="default")``: a Redis of the test's own, stopped after the test.

    Its data folder is ``.data/test-private-redis-<name>``; nothing persists across restarts.
    """
    yield from _private_servers("redis", start_embedded_redis)


@pytest.fixture
def private_postgres() -> Iterator[Callable[..., EmbeddedPostgres]]:
    """``private_postgres(name="default")``: a PostgreSQL of the test's own, stopped after.

    Its data folder ``.data/test-private-postgres-<name>`` is kept between runs (initdb once),
    so a test creates the databases it needs rather than expecting an empty server.
    """
    yield from _private_servers("postgres", start_embedded_postgres)


def _private_servers(kind: str, start_server: Callable[[Path], Server]) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(name: str = "default") -> Server:
        started.append(start_server(DATA_DIR / f"test-private-{kind}-{name}"))
        return started[-1]

    yield start
    for server in started:
        server.stop()  # whoever else may hold it: the test is over
        server.release()


async def _on_server(servers: ResolvedServers, *statements: str) -> None:
    """Run statements (CREATE / DROP DATABASE) on the server's ``postgres`` database."""
    admin = await asyncpg.connect(servers.database_url_for("postgres"))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()
