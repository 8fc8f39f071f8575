"""resolve_servers: URLs from the environment win, then usable local servers, then embedded
ones, which stop() stops. Embedded ones get a private folder, never the session's servers'."""

import asyncpg
import pytest
import redis

from devtools import DATA_DIR, embedded
from devtools.embedded import database_url, resolve_servers
from devtools.embedded_servers import free_port

NO_SERVER_STARTS_HERE = DATA_DIR / "test-private-resolve-unused"


def test_environment_urls_are_used_as_given_and_nothing_starts():
    resolved = resolve_servers(
        {"REDIS_URL": "redis://cache.internal:6380/2", "DATABASE_URL": "postgresql://app@db/shop"},
        NO_SERVER_STARTS_HERE,
    )
    assert (resolved.redis_url, resolved.redis_origin) == ("redis://cache.internal:6380/2", "environment")
    assert (resolved.database_url, resolved.database_origin) == ("postgresql://app@db/shop", "environment")
    assert resolved.started == []
    assert resolved.database_url_for("other") == "postgresql://app@db/other"
    assert resolved.environ() == {
        "REDIS_URL": "redis://cache.internal:6380/2",
        "DATABASE_URL": "postgresql://app@db/shop",
    }


def test_database_url_replaces_only_the_database_name():
    assert database_url("postgresql://postgres@/a?host=/run/pg", "b") == "postgresql://postgres@/b?host=/run/pg"
    assert database_url("postgresql://u:p@h:5433/a?sslmode=require", "b") == "postgresql://u:p@h:5433/b?sslmode=require"


def test_only_the_servers_asked_for_are_resolved():
    resolved = resolve_servers({"DATABASE_URL": "postgresql://app@db/shop"}, NO_SERVER_STARTS_HERE, redis=False)
    assert resolved.redis_url is None
    assert resolved.environ() == {"DATABASE_URL": "postgresql://app@db/shop"}


async def test_unreachable_local_ports_fall_back_to_embedded_servers_that_stop_after(monkeypatch, private_data_dir):
    closed_port = free_port()
    monkeypatch.setattr(embedded, "LOCAL_REDIS_URL", f"redis://127.0.0.1:{closed_port}/0")
    monkeypatch.setattr(embedded, "LOCAL_POSTGRES_URL", f"postgresql://postgres@127.0.0.1:{closed_port}/ticket_cart")

    resolved = resolve_servers({}, private_data_dir("resolve"))
    try:
        assert (resolved.redis_origin, resolved.database_origin) == ("embedded", "embedded")
        assert len(resolved.started) == 2
        assert redis.Redis.from_url(resolved.redis_url).ping()
        conn = await asyncpg.connect(resolved.database_url_for("postgres"))
        await conn.close()
    finally:
        resolved.stop()
    assert resolved.started == []
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(resolved.redis_url, socket_connect_timeout=1).ping()
    with pytest.raises(OSError):
        await asyncpg.connect(resolved.database_url_for("postgres"), timeout=2)


def test_force_embedded_ignores_local_servers(private_data_dir):
    data_dir = private_data_dir("resolve")
    resolved = resolve_servers({embedded.FORCE_EMBEDDED_VARIABLE: "1"}, data_dir)
    try:
        assert (resolved.redis_origin, resolved.database_origin) == ("embedded", "embedded")
        assert resolved.database_url == embedded.EmbeddedPostgres(data_dir / "postgres").url_for("ticket_cart")
    finally:
        resolved.stop()


def test_usable_local_servers_are_used():
    if not (
        embedded._usable_local_redis(embedded.LOCAL_REDIS_URL)
        and embedded._usable_local_postgres(embedded.LOCAL_POSTGRES_URL)
    ):
        pytest.skip("no Redis 6.2+ and PostgreSQL 15+ on the local ports")
    resolved = resolve_servers({}, NO_SERVER_STARTS_HERE)
    assert (resolved.redis_origin, resolved.database_origin) == ("local", "local")
    assert resolved.redis_url == embedded.LOCAL_REDIS_URL
    assert resolved.started == []
