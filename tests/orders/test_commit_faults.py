"""A COMMIT whose answer is delayed, lost or cut, injected for real: the API's PostgreSQL
pool goes through tests/pg_fault_proxy.py. For each thing a buyer may do next (retry,
clear and buy again, sign in and merge, add a line, do nothing, another buyer on the same
tier, a promo code on the cart) the test asserts: one order per cart, PostgreSQL's
quantity_sold equals its live tickets, Redis never grants a seat PostgreSQL sold (and is
exact once nothing is pending), no confirmed hold is refused, no line vanishes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import msgspec
import pytest
import pytest_asyncio
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from service.cart.service import now_ms
from service.http.services import build_services
from service.keys import Keys
from service.orders.recovery import recover_stuck_checkouts
from service.orders.settlement import checkout_window_ms
from service.redis.client import create_redis
from service.settings import Settings
from tests.api import ADMIN_HEADERS, api_client, bearer, put_tier
from tests.pg_fault_proxy import PgFaultProxy
from workers.sweep import sweep_expired_parts

DB_TIMEOUT = 1.0  # DATABASE_TIMEOUT_SECONDS of the API under test: a COMMIT answer held 4 s times out
BUYER = {"email": "buyer@example.com"}

pytestmark = pytest.mark.usefixtures("clean_state")


@dataclass
class Shop:
    api: AsyncTestClient
    proxy: PgFaultProxy
    settings: Settings
    db: asyncpg.Pool  # straight to PostgreSQL, not through the proxy
    redis: Redis

    async def add(self, tier_id: str, quantity: int, cart: dict | None = None) -> dict:
        """Hold seats; the cart's headers (a new guest cart when ``cart`` is None)."""
        self.api.cookies.clear()
        response = await self.api.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity},
                                       headers=cart or {})
        assert response.status_code in (200, 201), response.text
        return cart or {"X-Cart-Token": response.headers["x-cart-token"]}

    async def checkout(self, cart: dict, **headers: str):
        self.api.cookies.clear()
        return await self.api.post("/api/orders", json=BUYER, headers={**cart, **headers})

    async def cart(self, cart: dict) -> dict:
        self.api.cookies.clear()
        return (await self.api.get("/api/cart", headers=cart)).json()

    async def pending_checkout(self, cart: dict):
        """Check out while PostgreSQL commits, loses the answer and becomes unreachable:
        503 checkout-pending; then PostgreSQL is back."""
        self.proxy.drop_commit_answer(times=1, then_unreachable=True)
        response = await self.checkout(cart)
        self.proxy.refuse_connections(False)
        assert (response.status_code, response.json()["code"]) == (503, "checkout-pending"), response.text
        assert response.headers["retry-after"]
        assert (await self.cart(cart))["status"] == "checkout"
        assert await self.db.fetchval("SELECT count(*) FROM orders") >= 1  # it did commit
        return response

    async def counters(self, tier: dict) -> dict:
        """Redis's counters of the tier and the truth: PostgreSQL's sold, its live tickets,
        and the seats held by parts whose order did not commit."""
        inv = Keys(self.settings.key_prefix).event(tier["event_id"])
        fields = await self.redis.hmget(inv.inventory, f"{tier['id']}:total", f"{tier['id']}:sold",
                                        f"{tier['id']}:held")
        total, sold, held = (int(f) for f in fields)
        committed = {str(r["id"]) for r in await self.db.fetch("SELECT id FROM orders")}
        uncommitted_holds = 0
        parts = 0
        for raw in (await self.redis.hgetall(inv.carts)).values():
            part = msgspec.json.decode(raw)
            seats = part["l"].get(tier["id"], 0)
            parts += seats
            if part.get("o") not in committed:
                uncommitted_holds += seats
        row = await self.db.fetchrow(
            "SELECT quantity_sold, (SELECT count(*) FROM tickets WHERE tier_id = t.id AND status = 'valid') AS live"
            " FROM ticket_tiers t WHERE id = $1", uuid.UUID(tier["id"]))
        return {"total": total, "sold": sold, "held": held, "parts": parts, "sold_db": row["quantity_sold"],
                "tickets": row["live"], "truly_available": total - row["quantity_sold"] - uncommitted_holds}

    async def assert_invariants(self, tier: dict, *, settled: bool = True) -> dict:
        c = await self.counters(tier)
        assert c["sold_db"] == c["tickets"], c  # invariant 1
        assert c["held"] == c["parts"], c
        available = c["total"] - c["sold"] - c["held"]
        assert available <= c["truly_available"], c  # never a seat PostgreSQL sold
        if settled:
            assert (c["sold"], available) == (c["sold_db"], c["truly_available"]), c  # exact
        per_cart = await self.db.fetch("SELECT cart_id, count(*) AS n FROM orders GROUP BY cart_id")
        assert all(r["n"] == 1 for r in per_cart), per_cart  # one order per cart
        return c


@pytest_asyncio.fixture(loop_scope="session")
async def shop(settings, pg_fault_proxy, db_pool, redis) -> AsyncIterator[Shop]:
    faulty = msgspec.structs.replace(settings, database_url=pg_fault_proxy.database_url,
                                     database_timeout_seconds=DB_TIMEOUT)
    async with api_client(faulty) as api:
        yield Shop(api, pg_fault_proxy, faulty, db_pool, redis)


async def test_a_commit_answer_held_past_the_timeout_is_answered_as_the_order_it_made(shop):
    """The issue's repro: PostgreSQL's answer to COMMIT held 4 s, DATABASE_TIMEOUT 1 s. It
    used to answer 503 for an order that had committed, and reopen its part."""
    tier = await put_tier(shop.api, quantity_total=10)
    cart = await shop.add(tier["id"], 2)
    shop.proxy.delay_commit_answer(4, times=1)

    response = await shop.checkout(cart)

    assert shop.proxy.commits_delayed == 1
    assert response.status_code == 201, response.text
    assert response.json()["id"] == str(await shop.db.fetchval("SELECT id FROM orders"))
    assert response.json()["payment"]["code"] and response.json()["access_token"]
    assert (await shop.cart(cart))["item_count"] == 0
    c = await shop.assert_invariants(tier)
    assert (c["sold"], c["held"], c["sold_db"]) == (2, 0, 2)


async def test_a_commit_cut_before_postgresql_saw_it_reopens_the_part_and_the_retry_buys(shop):
    tier = await put_tier(shop.api, quantity_total=10)
    cart = await shop.add(tier["id"], 2)
    shop.proxy.cut_before_commit(times=1)

    refused = await shop.checkout(cart)

    assert (refused.status_code, refused.json()["code"]) == (503, "unavailable"), refused.text
    assert await shop.db.fetchval("SELECT count(*) FROM orders") == 0
    assert (await shop.cart(cart))["status"] == "open"
    await shop.assert_invariants(tier)
    assert (await shop.checkout(cart)).status_code == 201
    await shop.assert_invariants(tier)


async def test_pending_then_retried_answers_the_order_once(shop):
    tier = await put_tier(shop.api, quantity_total=10)
    cart = await shop.add(tier["id"], 2)
    await shop.pending_checkout(cart)
    await shop.assert_invariants(tier, settled=False)

    retried = await shop.checkout(cart)
    again = await shop.checkout(cart)

    assert retried.status_code == 200, retried.text
    assert retried.json()["access_token"]  # a guest who lost the answer gets the token back
    assert again.status_code == 200 and again.json()["id"] == retried.json()["id"]
    c = await shop.assert_invariants(tier)
    assert (c["sold"], c["held"]) == (2, 0)


async def test_pending_then_cleared_and_bought_again_answers_the_one_order(shop):
    tier = await put_tier(shop.api, quantity_total=10)
    cart = await shop.add(tier["id"], 2)
    await shop.pending_checkout(cart)

    cleared = await shop.api.delete("/api/cart", headers=cart)
    await shop.add(tier["id"], 2, cart)
    answered = await shop.checkout(cart)

    assert cleared.status_code == 200 and cleared.json()["item_count"] == 0
    assert answered.status_code == 200, answered.text
    assert [i["quantity"] for i in answered.json()["items"]] == [2]
    assert (await shop.cart(cart))["item_count"] == 2  # bought again: held, not sold twice
    c = await shop.assert_invariants(tier)
    assert (c["sold"], c["held"], c["sold_db"]) == (2, 2, 2)


async def test_pending_then_signed_in_and_merged_answers_the_guests_order_to_the_user(shop):
    tier = await put_tier(shop.api, quantity_total=10)
    cart = await shop.add(tier["id"], 2)
    await shop.pending_checkout(cart)
    user = bearer(shop.settings, "merger")

    merged = await shop.api.post("/api/cart/merge", headers={**user, **cart})
    answered = await shop.checkout(user)

    assert merged.status_code == 200, merged.text
    assert merged.json()["item_count"] == 0 and merged.json()["not_merged"] == []
    assert answered.status_code == 200, answered.text
    assert answered.json()["id"] == str(await shop.db.fetchval("SELECT id FROM orders"))
    assert answered.json()["access_token"]  # the guest order's token, for its new owner to read it
    c = await shop.assert_invariants(tier)
    assert (c["sold"], c["held"]) == (2, 0)


async def test_pending_then_a_line_added_in_the_same_event_keeps_it_in_the_cart(shop):
    event = str(uuid.uuid4())
    ga = await put_tier(shop.api, event_id=event, quantity_total=10)
    vip = await put_tier(shop.api, event_id=event, quantity_total=5, name="VIP")
    cart = await shop.add(ga["id"], 2)
    await shop.pending_checkout(cart)

    await shop.add(vip["id"], 1, cart)
    retried = await shop.checkout(cart)

    assert retried.status_code == 200, retried.text
    assert [(i["tier_id"], i["quantity"]) for i in retried.json()["items"]] == [(ga["id"], 2)]
    view = await shop.cart(cart)
    assert [(i["tier_id"], i["quantity"]) for i in view["items"]] == [(vip["id"], 1)]
    assert view["status"] == "open"
    for tier in (ga, vip):
        await shop.assert_invariants(tier)


async def test_pending_then_left_alone_is_applied_by_the_worker_never_released(shop):
    tier = await put_tier(shop.api, quantity_total=10)
    cart = await shop.add(tier["id"], 2)
    await shop.pending_checkout(cart)
    services = build_services(shop.settings, create_redis(shop.settings), shop.db)
    try:
        later = now_ms() + checkout_window_ms(DB_TIMEOUT) + 1
        await sweep_expired_parts(services, now_ms=later + 3_600_000)  # a sweep never frees it
        await shop.assert_invariants(tier, settled=False)
        stats = await recover_stuck_checkouts(services, now_ms=later)
    finally:
        await services.redis.aclose()

    assert (stats.due, stats.applied) == (1, 1)
    c = await shop.assert_invariants(tier)
    assert (c["sold"], c["held"]) == (2, 0)
    answered = await shop.checkout(cart)  # the buyer comes back: their order, not cart-empty
    assert answered.status_code == 200 and answered.json()["items"][0]["quantity"] == 2


async def test_pending_does_not_cost_another_buyer_a_seat_or_a_confirmed_hold(shop):
    tier = await put_tier(shop.api, quantity_total=3)
    first = await shop.add(tier["id"], 2)
    await shop.pending_checkout(first)

    second = await shop.add(tier["id"], 1)  # the one seat left
    shop.api.cookies.clear()
    none_left = await shop.api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    cleared = await shop.api.delete("/api/cart", headers=first)  # settles the first: applied
    third = await shop.api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    bought = await shop.checkout(second)

    assert (none_left.status_code, none_left.json()["code"]) == (409, "sold-out")
    assert cleared.status_code == 200
    assert (third.status_code, third.json()["code"]) == (409, "sold-out")  # the first buyer's seats stay sold
    assert bought.status_code == 201, bought.text  # the confirmed hold is honoured
    c = await shop.assert_invariants(tier)
    assert (c["sold"], c["held"], c["sold_db"]) == (3, 0, 3)


async def test_pending_with_a_promo_code_is_answered_before_the_code_is_quoted_again(shop):
    tier = await put_tier(shop.api, quantity_total=10, price=100_000)
    created = await shop.api.post("/api/admin/promo-codes", headers=ADMIN_HEADERS, json={
        "code": "ONCEEACH", "kind": "percent", "value": 10, "max_uses_per_customer": 1})
    assert created.status_code in (200, 201), created.text
    cart = await shop.add(tier["id"], 2)
    assert (await shop.api.post("/api/cart/promo", json={"code": "ONCEEACH"}, headers=cart)).status_code == 200
    await shop.pending_checkout(cart)

    retried = await shop.checkout(cart)

    assert retried.status_code == 200, retried.text  # not promo-exhausted by its own use
    assert (retried.json()["discount"], retried.json()["total"]) == (20_000, 180_000)
    assert await shop.db.fetchval("SELECT used FROM promo_codes WHERE code = 'ONCEEACH'") == 1
    await shop.assert_invariants(tier)
