"""The fixtures that find or start the real servers the tests use, all in this one place.

Servers are resolved once a session: REDIS_URL / DATABASE_URL, else the local ports, else
embedded ones (TC_FORCE_EMBEDDED=1 skips the local ports). On them a test run owns only
names of its own: the database ``ticket_cart_test_<run>`` and the Redis keys under
``tct:<run>:``, where ``<run>`` is the pid (or TC_TEST_RUN). So several runs share one
machine's servers side by side, and none ever flushes a Redis database. A run removes its
names when it ends, and those of runs that died, which it tells by a PostgreSQL advisory
lock every live run holds. Tests that stop or restart a server use a private one.

``--redis=cluster`` (tests/suite_policy.py) puts ``settings`` and ``redis`` on a local
3-master Redis Cluster (``redis_cluster``) instead of the standalone Redis; PostgreSQL and
arq's queue (``ARQ_REDIS_URL``) stay on ``servers``.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
import pytest_asyncio
from redis.asyncio import Redis, RedisCluster

from devtools import DATA_DIR
from devtools.embedded import (
    EmbeddedPostgres,
    EmbeddedRedis,
    ResolvedServers,
    resolve_servers,
    start_embedded_postgres,
    start_embedded_redis,
)
from devtools.embedded_cluster import EmbeddedCluster, stop_abandoned
from devtools.keyspace import glob_escape, unlink_prefix
from service.db.migrate import apply_migrations
from service.settings import Settings
from tests.pg_fault_proxy import PgFaultProxy

pytest_plugins = ("tests.suite_policy",)  # --redis, the cluster pass, CI's allowed skips

RUN_ID = os.environ.get("TC_TEST_RUN") or str(os.getpid())
if not re.fullmatch(r"[a-z0-9]{1,20}", RUN_ID):
    raise pytest.UsageError(f"TC_TEST_RUN must be 1 to 20 of [a-z0-9], not {RUN_ID!r}")
DATABASE_PREFIX = "ticket_cart_test_"
TEST_DATABASE = DATABASE_PREFIX + RUN_ID  # a scratch database adds "_<name>"
KEY_PREFIX_ROOT = "tct:"
TEST_KEY_PREFIX = f"{KEY_PREFIX_ROOT}{RUN_ID}:"
TEST_SECRETS = {
    "ADMIN_API_KEY": "test-admin-key",
    "CART_TOKEN_SECRET": "test-cart-token-secret-of-32-bytes",
    "JWT_SECRET": "test-jwt-secret-of-at-least-32-bytes",  # HS256 wants 32+ bytes
}
# What clean_state empties: every table the migrations create, whatever a new one adds.
_STATE_TABLES = """
SELECT string_agg(format('%I', tablename), ', ' ORDER BY tablename) FROM pg_tables
WHERE schemaname = 'public' AND tablename <> 'schema_migrations'
"""
CLUSTER_DIR_PREFIX = "test-cluster-"  # + run: .data/ folder of the run's Redis Cluster
_RUN_LOCK_SPACE = 0x7C7C  # first key of the (space, hashtext(database)) advisory locks of live runs

Server = TypeVar("Server", EmbeddedRedis, EmbeddedPostgres)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def servers() -> AsyncIterator[ResolvedServers]:
    """The Redis and PostgreSQL of this session, with this run's names on them registered.

    While the session lasts it holds its run's advisory lock; at the start it clears the
    names of dead runs, at the end its own; embedded servers stop when no run needs them.
    """
    resolved = resolve_servers(os.environ)
    try:
        lock = await asyncpg.connect(resolved.database_url_for("postgres"))
        client = Redis.from_url(resolved.redis_url)
        try:
            await lock.execute("SELECT pg_advisory_lock($1, hashtext($2))", _RUN_LOCK_SPACE, TEST_DATABASE)
            await _clear_dead_runs(lock, client)
            yield resolved
            await delete_keys(client, TEST_KEY_PREFIX)
            await _drop_databases(lock, _is_this_run)
        finally:
            await client.aclose()
            await lock.close()
    finally:
        resolved.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(servers: ResolvedServers) -> str:
    """URL of this run's test database, created and migrated at session start."""
    await _on_server(
        servers, f'DROP DATABASE IF EXISTS "{TEST_DATABASE}" WITH (FORCE)', f'CREATE DATABASE "{TEST_DATABASE}"'
    )
    url = servers.database_url_for(TEST_DATABASE)
    await apply_migrations(url)
    return url


@pytest.fixture(scope="session")
def settings(request: pytest.FixtureRequest, on_cluster: bool, servers: ResolvedServers, database_url: str) -> Settings:
    """Settings on the test servers, with this run's key prefix and fixed secrets; with
    ``--redis=cluster``, on the run's Redis Cluster."""
    assert servers.redis_url is not None
    if on_cluster:
        return settings_on(cluster_env(request.getfixturevalue("redis_cluster"), servers), database_url)
    return settings_on({"REDIS_URL": servers.redis_url}, database_url)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[EmbeddedCluster]:
    """This run's 3-master cluster under ``.data/test-cluster-<run>``, started when a test
    first needs it, stopped and removed at the end. Clusters of dead runs are stopped first."""
    for leftover in DATA_DIR.glob(f"{CLUSTER_DIR_PREFIX}*"):
        stop_abandoned(leftover)
    cluster = EmbeddedCluster(DATA_DIR / f"{CLUSTER_DIR_PREFIX}{RUN_ID}")
    cluster.start()
    yield cluster
    cluster.stop()


def cluster_env(cluster: EmbeddedCluster, servers: ResolvedServers) -> dict[str, str]:
    """The Redis settings of a cluster run: arq's queue stays on the standalone test Redis
    (arq cannot use a cluster)."""
    assert servers.redis_url is not None
    return {"REDIS_URL": cluster.url, "REDIS_CLUSTER": "1", "ARQ_REDIS_URL": servers.redis_url}


def settings_on(redis_env: dict[str, str], database_url: str) -> Settings:
    """Settings on ``redis_env``'s Redis and that database, this run's prefix, fixed secrets."""
    return Settings.from_env(
        {
            **redis_env,
            "DATABASE_URL": database_url,
            "KEY_PREFIX": TEST_KEY_PREFIX,
            "APP_ENV": "development",
            # Off here: tests/hardening turns the general rate limit on where it is the subject.
            "RATE_LIMIT_PER_MINUTE": "0",
            **TEST_SECRETS,
        }
    )


@pytest_asyncio.fixture(loop_scope="session")
async def redis(
    request: pytest.FixtureRequest, on_cluster: bool, servers: ResolvedServers
) -> AsyncIterator[Redis | RedisCluster]:
    """A client of the test Redis (bytes in and out), new for each test; with
    ``--redis=cluster``, a cluster client of the run's cluster."""
    if on_cluster:
        client = RedisCluster.from_url(request.getfixturevalue("redis_cluster").url, decode_responses=False)
    else:
        client = Redis.from_url(servers.redis_url, decode_responses=False)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """One asyncpg pool on this run's test database for the whole session."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def clean_state(redis: Redis, db_pool: asyncpg.Pool) -> None:
    """Start the test from nothing: none of this run's keys in Redis, empty tables.

    Opt in with ``pytestmark = pytest.mark.usefixtures("clean_state")`` or by asking for it;
    pure unit tests need no server and should not pay for one.
    """
    await delete_keys(redis, TEST_KEY_PREFIX)
    await empty_tables(db_pool)


# The statements that empty every table, found once per run (children before the tables
# they reference). DELETE on the few rows a test leaves costs about 0.2 ms where TRUNCATE
# (new files for a dozen tables) costs about 20: over a thousand tests, half a minute a pass.
_emptying: list[str] = []

_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text AS child, c.confrelid::regclass::text AS parent
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE c.contype = 'f' AND n.nspname = 'public' AND c.conrelid <> c.confrelid
"""
_RESTART_SEQUENCES = """
SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)
FROM pg_sequences WHERE schemaname = 'public'
"""


async def empty_tables(db_pool: asyncpg.Pool) -> None:
    """Every table the migrations create emptied, whatever a new one adds, and their
    sequences restarted (as TRUNCATE ... RESTART IDENTITY would)."""
    if not _emptying:
        _emptying.append(await _emptying_script(db_pool))
    try:
        await db_pool.execute(_emptying[0])
    except asyncpg.UndefinedTableError:  # a test changed the schema: find the tables again
        _emptying[0] = await _emptying_script(db_pool)
        await db_pool.execute(_emptying[0])


async def _emptying_script(db_pool: asyncpg.Pool) -> str:
    names = (await db_pool.fetchval(_STATE_TABLES) or "").split(", ")
    tables = [name for name in names if name]
    parents: dict[str, set[str]] = {table: set() for table in tables}
    for row in await db_pool.fetch(_FOREIGN_KEYS):
        if row["child"] in parents and row["parent"] in parents:
            parents[row["child"]].add(row["parent"])
    ordered: list[str] = []  # a table before every table it references
    while parents:
        free = sorted(t for t in parents if not any(t in refs for refs in parents.values()))
        if not free:  # a cycle of references: TRUNCATE takes them all at once
            return f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"
        ordered += free
        for table in free:
            del parents[table]
    deletes = "; ".join(f"DELETE FROM {table}" for table in ordered)
    return f"BEGIN; {deletes}; {_RESTART_SEQUENCES}; COMMIT"


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_database(servers: ResolvedServers) -> AsyncIterator[Callable[[str], Awaitable[str]]]:
    """``await scratch_database(name)``: URL of ``ticket_cart_test_<run>_<name>``, a database
    that does not exist yet (the test creates it, or has it created); dropped after the test."""
    names: list[str] = []

    async def absent_database(name: str) -> str:
        names.append(f"{TEST_DATABASE}_{name}")
        await _on_server(servers, f'DROP DATABASE IF EXISTS "{names[-1]}" WITH (FORCE)')
        return servers.database_url_for(names[-1])

    yield absent_database
    for name in names:
        await _on_server(servers, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_fault_proxy(database_url: str) -> Iterator[PgFaultProxy]:
    """A started :class:`~tests.pg_fault_proxy.PgFaultProxy` in front of the test database;
    ``.database_url`` goes through it. It delays, drops or cuts COMMIT answers on demand."""
    with PgFaultProxy(database_url) as proxy:
        yield proxy


async def delete_keys(client: Redis, prefix: str) -> int:
    """UNLINK every key under ``prefix`` (SCAN, never FLUSHDB: the server may be shared)."""
    return await unlink_prefix(client, prefix)


@pytest.fixture
def private_redis(private_data_dir: Callable[[str], Path]) -> Iterator[Callable[..., EmbeddedRedis]]:
    """``private_redis(name="default")``: a Redis of the test's own, stopped after the test.

    Its data folder is ``.data/test-private-redis-<name>``; nothing persists across restarts.
    """
    yield from _private_servers("redis", start_embedded_redis, private_data_dir)


@pytest.fixture
def private_postgres(private_data_dir: Callable[[str], Path]) -> Iterator[Callable[..., EmbeddedPostgres]]:
    """``private_postgres(name="default")``: a PostgreSQL of the test's own, stopped after.

    Its data folder ``.data/test-private-postgres-<name>`` is kept between runs (initdb once),
    so a test creates the databases it needs rather than expecting an empty server.
    """
    yield from _private_servers("postgres", start_embedded_postgres, private_data_dir)


@pytest.fixture
def private_data_dir() -> Iterator[Callable[[str], Path]]:
    """``private_data_dir(name)``: ``.data/test-private-<name>``, this test's alone until it ends.

    Such a folder is shared by every run of this checkout, so a test waits for it (a flock).
    """
    locks: list[int] = []

    def lock(name: str) -> Path:
        data_dir = DATA_DIR / f"test-private-{name}"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        locks.append(os.open(f"{data_dir}.lock", os.O_RDWR | os.O_CREAT, 0o666))
        fcntl.flock(locks[-1], fcntl.LOCK_EX)
        return data_dir

    yield lock
    for fd in locks:
        os.close(fd)


def _private_servers(
    kind: str, start_server: Callable[[Path], Server], data_dir: Callable[[str], Path]
) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(name: str = "default") -> Server:
        started.append(start_server(data_dir(f"{kind}-{name}")))
        return started[-1]

    yield start
    for server in started:
        server.stop()  # whoever else may hold it: the test is over
        server.release()


async def _clear_dead_runs(lock: asyncpg.Connection, client: Redis) -> None:
    """Drop the databases and keys of runs that died without clearing them (kill -9)."""
    dead: dict[str, bool] = {}

    async def is_dead(run: str) -> bool:
        if run not in dead:
            # Taking a live run's lock fails at once; a dead run's is free: take and let go.
            free = await lock.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", _RUN_LOCK_SPACE, DATABASE_PREFIX + run
            )
            if free:
                await lock.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))", _RUN_LOCK_SPACE, DATABASE_PREFIX + run
                )
            dead[run] = bool(free) and run != RUN_ID
        return dead[run]

    await _drop_databases(lock, is_dead)
    async for key in client.scan_iter(match=glob_escape(KEY_PREFIX_ROOT) + "*", count=1000):
        run = key.decode(errors="replace")[len(KEY_PREFIX_ROOT) :].partition(":")[0]
        if re.fullmatch(r"[a-z0-9]{1,20}", run) and await is_dead(run):
            await client.unlink(key)


async def _drop_databases(admin: asyncpg.Connection, of_run: Callable[[str], Awaitable[bool]]) -> None:
    """Drop every ``ticket_cart_test_<run>[_<name>]`` database whose run ``of_run`` picks."""
    names = await admin.fetch("SELECT datname FROM pg_database WHERE starts_with(datname, $1)", DATABASE_PREFIX)
    for (name,) in names:
        if await of_run(name[len(DATABASE_PREFIX) :].partition("_")[0]):
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _is_this_run(run: str) -> bool:
    return run == RUN_ID


async def _on_server(servers: ResolvedServers, *statements: str) -> None:
    """Run statements (CREATE / DROP DATABASE) on the server's ``postgres`` database."""
    admin = await asyncpg.connect(servers.database_url_for("postgres"))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()
