"""Readiness means "can serve carts", and carts need only Redis: through a real server
(uvicorn subprocess), the API starts while PostgreSQL is down, is ready, serves carts and
answers checkouts 503; once PostgreSQL is up, checkout works with no restart. A pool taken
by checkouts queued on a tier's row lock does not make it unready either. And the monitor
behind the body's "postgres" and ``tc_postgres_up`` opens DB_POOL_MIN connections once
PostgreSQL answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx
import msgspec
import pytest
from prometheus_client import REGISTRY

from service.db.monitor import PostgresMonitor
from service.db.pool import create_pool
from service.inventory.dto import TierDefinition
from service.redis.client import create_redis
from service.wiring import build_services
from tests.hardening.test_faults import (
    FAST_TIMEOUTS,
    add,
    assert_no_unhandled_error,
    is_unavailable,
    migrated_database,
    put_tier,
    until,
)
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")

ORDER = {"email": "b@example.com"}


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict]:
    response = await client.get("/health/ready")
    return response.status_code, response.json()


async def postgres_up_gauge(client: httpx.AsyncClient) -> str:
    lines = (await client.get("/metrics")).text.splitlines()
    return next(line.split()[1] for line in lines if line.startswith("tc_postgres_up "))


async def test_the_api_starts_without_postgres_serves_carts_and_checks_out_once_it_is_up(settings, private_postgres):
    pg_server = private_postgres("startup")
    async with migrated_database(pg_server, "startup") as database_url:
        # A tier already in PostgreSQL and in Redis, as in a running deployment.
        tier_id, redis = str(uuid.uuid4()), create_redis(settings)
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
        services = build_services(msgspec.structs.replace(settings, database_url=database_url), redis, pool)
        await services.inventory.put_tier(
            tier_id,
            TierDefinition(
                event_id=uuid.uuid4(), name="Early", price=100_000, currency="VND", quantity_total=10, max_per_order=4
            ),
        )
        await pool.close()
        await redis.aclose()

        pg_server.stop()
        # live_server returns once /health/ready answers 200: uvicorn started without PostgreSQL.
        with live_server(settings, **FAST_TIMEOUTS, DATABASE_URL=database_url) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
                status, body = await readiness(client)
                assert status == 200
                assert (body["status"], body["redis"], body["scripts"]) == ("ok", "ok", "loaded")
                assert body["postgres"].startswith("unreachable: "), body
                assert await postgres_up_gauge(client) == "0.0"

                # The new process knows the tier from Redis alone.
                response = await add(client, tier_id, 2)
                assert response.status_code == 201, response.text
                cart = {"X-Cart-Token": response.headers["x-cart-token"]}
                assert (await client.get(f"/api/tiers/{tier_id}/availability")).json()["available"] == 8
                assert is_unavailable(await client.post("/api/orders", json=ORDER, headers=cart))
                assert (await client.get("/api/cart", headers=cart)).json()["status"] == "open"

                pg_server.start()

                async def checked_out() -> httpx.Response | None:
                    answer = await client.post("/api/orders", json=ORDER, headers=cart)
                    return answer if answer.status_code == 201 else None

                order = await until(checked_out)
                assert order is not None and len(order.json()["tickets"]) == 2
                assert await until(lambda: _reports_postgres_ok(client)), await readiness(client)
                assert await postgres_up_gauge(client) == "1.0"
            assert_no_unhandled_error(server)


async def _reports_postgres_ok(client: httpx.AsyncClient) -> bool:
    return (await readiness(client))[1]["postgres"] == "ok"


async def test_a_pool_taken_by_checkouts_queued_on_a_row_lock_keeps_the_api_ready(settings, db_pool):
    env = {**FAST_TIMEOUTS, "DATABASE_TIMEOUT_SECONDS": "5", "DB_POOL_MIN": "1", "DB_POOL_MAX": "1"}
    with live_server(settings, **env) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            tier_id = await put_tier(client, 10)
            tokens = [(await add(client, tier_id, 1)).headers["x-cart-token"] for _ in range(3)]
            async with db_pool.acquire() as holder, holder.transaction():
                await holder.execute("SELECT 1 FROM ticket_tiers WHERE id = $1 FOR UPDATE", uuid.UUID(tier_id))
                checkouts = [
                    asyncio.create_task(client.post("/api/orders", json=ORDER, headers={"X-Cart-Token": t}))
                    for t in tokens
                ]
                await asyncio.sleep(0.5)  # the first waits on the lock, holding the pool's one connection
                started = time.monotonic()
                status, body = await readiness(client)
                assert time.monotonic() - started < 0.5
                assert (status, body) == (200, {"status": "ok", "redis": "ok", "scripts": "loaded", "postgres": "ok"})
                assert not any(task.done() for task in checkouts), "no checkout was queued"
            assert [answer.status_code for answer in await asyncio.gather(*checkouts)] == [201, 201, 201]
        assert_no_unhandled_error(server)


async def test_the_monitor_reports_postgres_and_opens_db_pool_min_connections_once_it_answers(settings):
    unreachable = msgspec.structs.replace(settings, database_url="postgresql://postgres@127.0.0.1:9/nothing-listens")
    lazy = await create_pool(unreachable)  # created without connecting
    assert not await PostgresMonitor(unreachable, lazy).probe()
    assert REGISTRY.get_sample_value("tc_postgres_up") == 0
    await lazy.close()

    pool = await create_pool(msgspec.structs.replace(settings, db_pool_min=2))
    monitor = PostgresMonitor(msgspec.structs.replace(settings, db_pool_min=2), pool)
    assert (monitor.state, pool.get_size()) == ("unknown", 0)
    monitor.start()
    try:

        async def filled() -> bool:
            return pool.get_size() == 2

        assert await until(filled, 5)
        assert monitor.state == "ok" and REGISTRY.get_sample_value("tc_postgres_up") == 1
    finally:
        await monitor.stop()
        await pool.close()
