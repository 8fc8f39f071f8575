"""A flash sale's last act through real uvicorn processes: 200 carts holding every last
seat check out at once, some of them twice. Every seat is sold exactly once, every cart
has one order, and Redis agrees with PostgreSQL afterwards. The floor's orders are written
together (group commit), each with a version of its own."""

from __future__ import annotations

import asyncio
import http.cookiejar
import uuid

import httpx
import pytest

from tests.api import ADMIN_HEADERS
from tests.live_server import live_server

pytestmark = pytest.mark.usefixtures("clean_state")

CARTS = 200
SECOND_EVENT_CARTS = 50
TWICE = 50  # carts whose checkout is also sent a second time, at once


async def put_tier(client: httpx.AsyncClient, total: int) -> str:
    tier_id = str(uuid.uuid4())
    response = await client.put(
        f"/api/admin/tiers/{tier_id}",
        headers=ADMIN_HEADERS,
        json={
            "event_id": str(uuid.uuid4()),
            "name": "Last seats",
            "price": 300_000,
            "currency": "VND",
            "quantity_total": total,
            "max_per_order": 4,
        },
    )
    assert response.status_code == 201, response.text
    return tier_id


async def inventory(client: httpx.AsyncClient, tier_id: str) -> dict:
    return (await client.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def test_two_hundred_carts_holding_the_last_seats_check_out_at_once(settings, db_pool):
    with live_server(settings, workers=2, DB_POOL_MAX="20", RATE_LIMIT_PER_MINUTE="0") as server:
        # Every cart is a stranger: the client keeps no cookie, carts travel in X-Cart-Token.
        no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits, cookies=no_cookies) as client:
            floor = await put_tier(client, CARTS)
            balcony = await put_tier(client, SECOND_EVENT_CARTS)

            async def fill_cart(i: int) -> dict[str, str]:
                added = await client.post("/api/cart/items", json={"tier_id": floor, "quantity": 1})
                assert added.status_code == 201, added.text
                cart = {"X-Cart-Token": added.headers["x-cart-token"]}
                if i < SECOND_EVENT_CARTS:
                    more = await client.post("/api/cart/items", json={"tier_id": balcony, "quantity": 1}, headers=cart)
                    assert more.status_code == 200, more.text
                return cart

            carts = await asyncio.gather(*(fill_cart(i) for i in range(CARTS)))
            assert (await inventory(client, floor))["available"] == 0
            assert (await inventory(client, balcony))["available"] == 0

            start = asyncio.Event()

            async def check_out(cart: dict[str, str]) -> httpx.Response:
                await start.wait()
                return await client.post("/api/orders", json={"email": "fan@example.com"}, headers=cart)

            sent = carts + carts[-TWICE:]
            tasks = [asyncio.create_task(check_out(cart)) for cart in sent]
            start.set()
            responses = await asyncio.gather(*tasks)

            by_cart: dict[str, set[str]] = {}
            for cart, response in zip(sent, responses, strict=True):
                assert response.status_code in (200, 201, 409), response.text
                if response.status_code == 409:
                    assert response.json()["code"] == "checkout-in-progress"
                    continue
                by_cart.setdefault(cart["X-Cart-Token"], set()).add(response.json()["id"])
            assert len(by_cart) == CARTS and all(len(ids) == 1 for ids in by_cart.values())
            assert sum(r.status_code == 201 for r in responses) == CARTS

            floor_inventory = await inventory(client, floor)
            balcony_inventory = await inventory(client, balcony)
            metrics = (await client.get("/metrics")).text

    assert floor_inventory == {"total": CARTS, "sold": CARTS, "held": 0, "available": 0, "sold_db": CARTS}
    assert balcony_inventory == {
        "total": SECOND_EVENT_CARTS,
        "sold": SECOND_EVENT_CARTS,
        "held": 0,
        "available": 0,
        "sold_db": SECOND_EVENT_CARTS,
    }
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == CARTS
    assert (
        await db_pool.fetchval(
            "SELECT count(*) FROM (SELECT cart_id FROM orders GROUP BY cart_id HAVING count(*) > 1) AS twice"
        )
        == 0
    )
    # Invariant 1: every tier's live tickets are exactly its quantity_sold.
    assert (
        await db_pool.fetch(
            "SELECT t.id FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id AND k.status = 'valid'"
            " GROUP BY t.id HAVING count(k.id) <> max(t.quantity_sold)"
        )
        == []
    )
    assert await db_pool.fetchval("SELECT count(DISTINCT payment_code) FROM orders") == CARTS
    # Group commit wrote orders of the floor together (service/orders/group_commit.py), each
    # still its own change of quantity_sold: one sold_version per order, none shared.
    together = [
        line
        for line in metrics.splitlines()
        if line.startswith("tc_order_writes_total{") and 'orders="1"' not in line and float(line.split()[-1]) > 0
    ]
    assert together, "no write of several orders"
    versions = await db_pool.fetch(
        "SELECT sold_version FROM order_items WHERE tier_id = $1 ORDER BY sold_version", uuid.UUID(floor)
    )
    assert [r["sold_version"] for r in versions] == list(range(1, CARTS + 1))
