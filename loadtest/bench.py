"""``make bench``: the standard phases against a server this command starts on this machine,
and beside it the stack reference (loadtest/stack_reference.py), served the same way.

It resolves Redis and PostgreSQL as make run does (devtools.embedded), uses a database
of its own (``ticket_cart_bench``, re-created each time) and the key prefix ``tcbench:``,
and deletes those keys afterwards (SCAN + UNLINK, never FLUSH): it is safe beside a
developer's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from loadtest.procstat import redis_cpu_meter
from loadtest.progress import ProgressLine
from loadtest.runner import Phase
from loadtest.scenarios import SCENARIOS, SERVICE, STACK_REFERENCE
from loadtest.server import ServerUnderTest
from loadtest.suite import REDIS, Options, PhaseOutcome, SuiteError, run_suite

BENCH_DATABASE = "ticket_cart_bench"
BENCH_KEY_PREFIX = "tcbench:"
STACK_REFERENCE_APP = "loadtest.stack_reference:app"


def stack_phases(*, duration: float, connections: int, rounds: int) -> list[Phase]:
    """The service beside the stack reference (issue #18), each pair back to back.

    Reference bare route, ``/health/live``, reference EVALSHA route, add-to-cart; the whole
    round ``rounds`` times, so noise from a shared machine hits each side in turn (the
    targets take each side's best round).
    """
    closed = {"mode": "closed", "connections": connections, "duration": duration}
    phases = []
    for number in range(1, rounds + 1):
        tag = number if rounds > 1 else 0
        phases += [
            Phase(label="ref-ping", scenario="ping", round=tag, **closed),
            Phase(label="ceiling", scenario="health", round=tag, **closed),
            Phase(label="ref-eval", scenario="eval", round=tag, **closed),
            Phase(label="add", scenario="add", round=tag, **closed),
        ]
    return phases


def standard_phases(*, duration: float, connections: int, rate: float, buyers: int, rounds: int = 2) -> list[Phase]:
    """Throughput at saturation (closed) against the stack's own limit; latency at fixed
    rates (open); checkouts spread and on one hot tier; a flash sale."""
    closed = {"mode": "closed", "connections": connections, "duration": duration}
    opened = {"mode": "open", "connections": connections, "rate": rate, "duration": duration}
    return [
        *stack_phases(duration=duration, connections=connections, rounds=rounds),
        Phase(label="read", scenario="read", **closed),
        Phase(label="mix", scenario="mix", **closed),
        Phase(label="ceiling", scenario="health", **opened),
        Phase(label="mix", scenario="mix", **opened),
        Phase(label="read", scenario="read", **opened),
        # add then checkout: 200 checkouts/s offered at 400 requests/s
        Phase(label="checkout", scenario="checkout", mode="open", connections=connections, rate=400, duration=duration),
        # Back to back: checkouts over 256 tiers, then every buyer on one tier with as many
        # seats as buyers (ends when every buyer is done: the duration only bounds it); it
        # must also sell every seat (no buyer refused while a seat is free).
        Phase(label="checkout-spread", scenario="checkout-spread", **closed),
        Phase(
            label="checkout-hot",
            scenario="checkout-hot",
            mode="closed",
            connections=connections,
            duration=max(120.0, duration),
            buyers=buyers,
            seats=buyers,
        ),
        # more buyers than seats (--buyers, --seats): sells exactly the seats there are
        Phase(
            label="flash",
            scenario="flash",
            mode="closed",
            connections=connections,
            duration=max(60.0, duration),
            buyers=buyers,
        ),
    ]


class BenchBusy(SuiteError):
    """Another bench is running against the same servers."""


def lock_path(servers_key: str) -> Path:
    digest = hashlib.sha256(servers_key.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"ticket-cart-bench-{digest}.lock"


@contextlib.contextmanager
def one_bench_at_a_time(servers_key: str) -> Iterator[None]:
    """Hold this machine's lock for ``servers_key`` (its database and Redis) while inside.

    Every bench uses the same database name and key prefix: a second one at the same time
    would drop the first's database (FORCE) and delete its keys, and both would measure
    each other. The lock is a file lock, so it goes with the process that holds it.
    """
    path = lock_path(servers_key)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BenchBusy(f"another make bench is running against the same servers ({path}); wait for it") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def uses_stack_reference(phases: list[Phase]) -> bool:
    return any(SCENARIOS[p.scenario].server == STACK_REFERENCE for p in phases)


def run_bench(
    phases: list[Phase], *, processes: int, workers: int, seats: int, display: ProgressLine
) -> tuple[list[PhaseOutcome], str]:
    """Start the servers and the API, run ``phases``, clean up; return outcomes and the URL."""
    from devtools.dev_secrets import development_secrets
    from devtools.embedded import resolve_servers
    from service.db.migrate import apply_migrations

    servers = resolve_servers(os.environ)
    try:
        assert servers.redis_url is not None and servers.database_url is not None
        database_url = servers.database_url_for(BENCH_DATABASE)
        # A second bench would drop this one's database and delete its keys.
        with one_bench_at_a_time(f"{database_url} {servers.redis_url}"):
            display.note(
                f"servers: Redis {servers.redis_origin}, PostgreSQL {servers.database_origin};"
                f" database {BENCH_DATABASE}, key prefix {BENCH_KEY_PREFIX}"
            )
            asyncio.run(_recreate_database(servers.database_url_for("postgres"), BENCH_DATABASE))
            asyncio.run(apply_migrations(database_url))
            asyncio.run(delete_keys(servers.redis_url, BENCH_KEY_PREFIX))
            admin_key, service_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
            env = {
                **os.environ,
                "REDIS_URL": servers.redis_url,
                "DATABASE_URL": database_url,
                "KEY_PREFIX": BENCH_KEY_PREFIX,
                "ADMIN_API_KEY": admin_key,
                "TRUSTED_SERVICE_KEY": service_key,
                "RATE_LIMIT_PER_MINUTE": "0",
                "LOG_LEVEL": "WARNING",
            }
            env.update(development_secrets(env))  # the cart token and JWT keys
            try:
                display.note(f"starting uvicorn service.app:app with {workers} workers")
                with (
                    ServerUnderTest("service.app:app", env=env, workers=workers) as server,
                    _stack_reference(phases, env, workers, display) as reference,
                ):
                    options = Options(
                        base_url=server.url,
                        reference_url=reference.url if reference else None,
                        admin_key=admin_key,
                        service_key=service_key,
                        database_url=database_url,
                        processes=processes,
                        seats=seats,
                    )
                    meters = {SERVICE: server.cpu_seconds, REDIS: redis_cpu_meter(servers.redis_url)}
                    if reference is not None:
                        meters[STACK_REFERENCE] = reference.cpu_seconds
                    return run_suite(options, phases, display, cpu_meters=meters), server.url
            finally:
                deleted = asyncio.run(delete_keys(servers.redis_url, BENCH_KEY_PREFIX))
                display.note(f"deleted {deleted:,} keys under {BENCH_KEY_PREFIX}")
    finally:
        servers.stop()


@contextlib.contextmanager
def _stack_reference(
    phases: list[Phase], env: dict[str, str], workers: int, display: ProgressLine
) -> Iterator[ServerUnderTest | None]:
    """The stack reference, served as the service is (same flags, workers, environment),
    when a phase needs it."""
    if not uses_stack_reference(phases):
        yield None
        return
    display.note(f"starting uvicorn {STACK_REFERENCE_APP} with {workers} workers (the stack reference)")
    with ServerUnderTest(STACK_REFERENCE_APP, env=env, workers=workers, ready_path="/ping") as server:
        yield server


async def _recreate_database(maintenance_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(maintenance_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def delete_keys(redis_url: str, prefix: str) -> int:
    """UNLINK every key under ``prefix``; the server may be shared, so never FLUSH."""
    from redis.asyncio import Redis

    from devtools.keyspace import unlink_prefix

    client = Redis.from_url(redis_url)
    try:
        return await unlink_prefix(client, prefix)
    finally:
        await client.aclose()
