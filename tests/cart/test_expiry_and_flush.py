"""Holds come back when they expire; a flushed Redis rebuilds from PostgreSQL."""

from __future__ import annotations

import time
import uuid

import msgspec
import pytest
from redis.asyncio import Redis

from service.keys import Keys
from service.redis.scripts import Scripts
from tests.api import ADMIN_HEADERS, api_client, put_tier
from tests.conftest import TEST_KEY_PREFIX, delete_keys

pytestmark = pytest.mark.usefixtures("clean_state")


class Clock:
    """The cart service's clock (``now_ms``), moved only by the test: a hold expires when
    the test says so, however fast the machine is."""

    def __init__(self) -> None:
        self.ms = int(time.time() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    stopped = Clock()
    monkeypatch.setattr("service.cart.service.now_ms", stopped)
    return stopped


async def inventory(api, tier_id):
    return (await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def test_an_expired_hold_is_released_lazily_by_the_next_reserve(settings, clock):
    async with api_client(settings) as api:
        tier = await put_tier(api, quantity_total=2, max_per_order=2)
        first = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})
        assert first.status_code == 201
        api.cookies.clear()
        clock.advance(settings.reservation_ttl_seconds - 1)
        assert (await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})).status_code == 409
        clock.advance(2)  # the first cart's hold is over
        api.cookies.clear()
        second = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})
        assert second.status_code == 201
        assert (await inventory(api, tier["id"]))["held"] == 2
        expired = await api.get("/api/cart", headers={"X-Cart-Token": first.headers["x-cart-token"]})
        assert expired.json()["status"] == "empty"


async def test_the_sweep_script_gives_expired_holds_back(settings, redis, clock):
    async with api_client(settings) as api:
        tier = await put_tier(api, quantity_total=5)
        await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 3})
        assert (await inventory(api, tier["id"]))["held"] == 3
        scripts = Scripts(redis, Keys(settings.key_prefix))
        not_yet = await scripts.sweep(event_id=tier["event_id"], now_ms=clock() + 1000, limit=100)
        assert not_yet.released == 0
        clock.advance(settings.reservation_ttl_seconds + 1)
        reply = await scripts.sweep(event_id=tier["event_id"], now_ms=clock(), limit=100)
        assert reply.released == 1
        assert (await inventory(api, tier["id"])) | {"held": 0, "available": 5} == await inventory(api, tier["id"])


async def test_a_flushed_redis_reloads_tiers_from_postgres_and_oversells_nothing(settings, redis, db_pool):
    async with api_client(settings) as api:
        tier = await put_tier(api, quantity_total=10, max_per_order=10)
        await db_pool.execute(
            "UPDATE ticket_tiers SET quantity_sold = 6, sold_version = sold_version + 1 WHERE id = $1",
            uuid.UUID(tier["id"]),
        )
        held = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})
        assert held.status_code == 201

        await delete_keys(redis, TEST_KEY_PREFIX)  # Redis lost everything (our keys only)

        api.cookies.clear()
        refused = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 5})
        assert refused.status_code == 409 and refused.json()["available"] == 4
        api.cookies.clear()
        granted = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 4})
        assert granted.status_code == 201
        assert await inventory(api, tier["id"]) == {"total": 10, "sold": 6, "held": 4, "available": 0, "sold_db": 6}
        # The cart from before the flush is gone (carts are lost on total Redis loss).
        lost = await api.get("/api/cart", headers={"X-Cart-Token": held.headers["x-cart-token"]})
        assert lost.json()["status"] == "empty"


@pytest.mark.standalone_only(
    reason="SCRIPT FLUSH on a private standalone Redis; on a cluster: "
    "tests/cluster/test_scripts_on_cluster.py flushes every master"
)
async def test_scripts_reload_after_redis_forgets_them(settings, private_redis):
    server = private_redis("script-flush")  # SCRIPT FLUSH is server-wide: never on a shared one
    async with api_client(msgspec.structs.replace(settings, redis_url=server.url)) as api:
        tier = await put_tier(api)
        client = Redis.from_url(server.url)
        await client.script_flush()  # as after a restart or failover
        await client.aclose()
        response = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
        assert response.status_code == 201
