"""Exactly once under real concurrency: a uvicorn server in a subprocess (the in-process
test client runs one request at a time), several processes' worth of requests at once."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.api import ADMIN_HEADERS, tier_body
from tests.live_server import live_server
from tests.payments.conftest import ACCOUNT, SEPAY_KEY, apikey_headers, payments, review_events, transaction

pytestmark = pytest.mark.usefixtures("clean_state")


@pytest.fixture
def server(settings):
    with live_server(settings, SEPAY_AUTH="apikey", SEPAY_API_KEY=SEPAY_KEY, PAYMENT_ACCOUNT_NUMBER=ACCOUNT) as live:
        yield live


async def buy(http: httpx.AsyncClient) -> dict:
    tier_id = str(uuid.uuid4())
    tier = tier_body(quantity_total=10)
    assert (await http.put(f"/api/admin/tiers/{tier_id}", json=tier, headers=ADMIN_HEADERS)).status_code == 201
    added = await http.post("/api/cart/items", json={"tier_id": tier_id, "quantity": 1})
    http.cookies.clear()
    ordered = await http.post(
        "/api/orders", json={"email": "buyer@example.com"}, headers={"X-Cart-Token": added.headers["x-cart-token"]}
    )
    assert ordered.status_code == 201, ordered.text
    return ordered.json()


async def deliver_all(http: httpx.AsyncClient, bodies: list[dict]) -> list[httpx.Response]:
    return await asyncio.gather(*(http.post("/api/payments/sepay", json=b, headers=apikey_headers()) for b in bodies))


async def waiting_for_locks(db_pool) -> int:
    """Sessions of the test database waiting for a lock (a second waiter for a row queues
    behind the first, so pg_blocking_pids would not name the holder)."""
    return await db_pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )


async def test_twenty_identical_deliveries_at_once_store_one_payment_and_pay_once(server, db_pool):
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        order = await buy(http)
        body = transaction(order["payment"]["code"], order["total"])
        answers = await deliver_all(http, [body] * 20)
    assert [(a.status_code, a.json()) for a in answers] == [(200, {"success": True})] * 20
    (payment,) = await payments(db_pool)
    assert (payment["status"], str(payment["order_id"])) == ("paid", order["id"])
    assert await db_pool.fetchval("SELECT status FROM orders WHERE id = $1", uuid.UUID(order["id"])) == "paid"
    assert await review_events(db_pool) == []
    paid_events = await db_pool.fetchval(
        "SELECT count(*) FROM order_events WHERE kind = 'order.paid' AND order_id = $1", uuid.UUID(order["id"])
    )
    assert paid_events == 1  # one order.paid, however many deliveries


async def test_transfers_racing_for_one_order_pay_it_once_and_keep_the_others_for_review(server, db_pool):
    """Five different transfers for one order, all reading it at once: the test holds the
    order's row until all five wait for it, so each decision must see the state the one
    before left (without the intake's lock, all five read pending_payment and record paid)."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        order = await buy(http)
        bodies = [transaction(order["payment"]["code"], order["total"]) for _ in range(5)]
        async with db_pool.acquire() as holder, holder.transaction():
            await holder.execute("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE", uuid.UUID(order["id"]))
            sent = asyncio.ensure_future(deliver_all(http, bodies))
            while await waiting_for_locks(db_pool) < 5:  # noqa: ASYNC110 (a poll of PostgreSQL: no event to wait on)
                await asyncio.sleep(0.01)
        answers = await sent
    assert [a.status_code for a in answers] == [200] * 5
    found = sorted((p["status"], p["reason"]) for p in await payments(db_pool))
    assert found == [("needs_review", "already-paid")] * 4 + [("paid", None)]
    assert len(await review_events(db_pool)) == 4
