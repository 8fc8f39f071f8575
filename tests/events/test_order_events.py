"""Each change of an order records its event in the change's own transaction: checkout,
mark-paid, cancel, expiry. A change that rolls back, or that changes nothing, records none."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import msgspec

from service.events.payloads import OrderEventData
from service.orders import store
from tests.api import ADMIN_HEADERS, put_tier

BUYER = {"email": "buyer@example.com"}
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)


async def hold(client, tier_id: str, quantity: int) -> dict[str, str]:
    added = await client.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity})
    assert added.status_code == 201, added.text
    client.cookies.clear()
    return {"X-Cart-Token": added.headers["x-cart-token"]}


async def buy(client, tier_id: str, quantity: int = 1) -> dict:
    response = await client.post("/api/orders", json=BUYER, headers=await hold(client, tier_id, quantity))
    assert response.status_code == 201, response.text
    return response.json()


async def events(db_pool, order_id: str | None = None) -> list[tuple[str, OrderEventData]]:
    """(kind, data) of the recorded events, of one order or all, in their order."""
    rows = await db_pool.fetch(
        "SELECT kind, payload::text AS payload FROM order_events WHERE $1::uuid IS NULL OR order_id = $1 ORDER BY seq",
        uuid.UUID(order_id) if order_id else None,
    )
    return [(r["kind"], msgspec.json.decode(r["payload"], type=OrderEventData)) for r in rows]


async def admin(client, order: dict, action: str):
    return await client.post(f"/api/admin/orders/{order['id']}/{action}", headers=ADMIN_HEADERS)


async def test_a_checkout_records_exactly_one_order_created_with_the_orders_state(client, db_pool):
    tier = await put_tier(client, price=200_000)
    order = await buy(client, tier["id"], 2)

    recorded = await events(db_pool)

    assert [kind for kind, _ in recorded] == ["order.created"]
    snapshot = recorded[0][1].order
    assert (str(snapshot.id), snapshot.number, snapshot.status, snapshot.total, snapshot.currency) == (
        order["id"],
        order["number"],
        "pending_payment",
        400_000,
        "VND",
    )
    assert snapshot.created_at == dt.datetime.fromisoformat(order["created_at"])
    assert snapshot.payment_due_at == dt.datetime.fromisoformat(order["payment"]["due_at"])


async def test_a_replayed_checkout_records_nothing_more(client, db_pool):
    tier = await put_tier(client)
    cart = await hold(client, tier["id"], 1)
    headers = {**cart, "Idempotency-Key": "k-1"}
    first = await client.post("/api/orders", json=BUYER, headers=headers)
    again = await client.post("/api/orders", json=BUYER, headers=headers)
    assert (first.status_code, again.status_code, again.json()["id"]) == (201, 200, first.json()["id"])
    assert [kind for kind, _ in await events(db_pool)] == ["order.created"]


async def test_an_order_with_nothing_to_pay_records_created_then_paid(client, db_pool):
    tier = await put_tier(client)
    await client.post(
        "/api/admin/promo-codes", headers=ADMIN_HEADERS, json={"code": "FREE", "kind": "percent", "value": 100}
    )
    cart = await hold(client, tier["id"], 1)
    assert (await client.post("/api/cart/promo", json={"code": "FREE"}, headers=cart)).status_code == 200
    order = (await client.post("/api/orders", json=BUYER, headers=cart)).json()

    recorded = await events(db_pool, order["id"])

    assert [(kind, data.order.status) for kind, data in recorded] == [("order.created", "paid"), ("order.paid", "paid")]
    assert recorded[1][1].order.paid_at is not None and recorded[1][1].order.payment_due_at is None


async def test_a_checkout_postgresql_refuses_records_nothing(client, db_pool):
    """The tier guard in PostgreSQL refuses (Redis thought there were seats): the order's
    statement ran, its events included, and the transaction rolled back."""
    tier = await put_tier(client, quantity_total=5)
    cart = await hold(client, tier["id"], 2)
    await db_pool.execute(
        "UPDATE ticket_tiers SET quantity_sold = 4, sold_version = sold_version + 1 WHERE id = $1",
        uuid.UUID(tier["id"]),
    )

    refused = await client.post("/api/orders", json=BUYER, headers=cart)

    assert (refused.status_code, refused.json()["code"]) == (409, "sold-out")
    assert await events(db_pool) == []


async def test_a_checkout_failing_after_its_statement_has_its_events_exactly_when_it_has_its_order(
    client, db_pool, monkeypatch
):
    """The connection is lost once the order's statement ran: whether the order committed
    or not (it is looked up), its events did the same, and the retry adds none."""
    tier = await put_tier(client)
    cart = await hold(client, tier["id"], 1)
    real_insert = store.insert_order
    tried: list[uuid.UUID] = []

    async def insert_then_fail(conn, order, **kwargs):
        await real_insert(conn, order, **kwargs)
        tried.append(order.id)
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection lost after the statement")

    monkeypatch.setattr(store, "insert_order", insert_then_fail)
    first = await client.post("/api/orders", json=BUYER, headers=cart)
    monkeypatch.undo()
    retried = await client.post("/api/orders", json=BUYER, headers=cart)

    assert first.status_code in (201, 503) and retried.status_code in (200, 201)
    orders = {r["id"] for r in await db_pool.fetch("SELECT id FROM orders")}
    created = [r["order_id"] for r in await db_pool.fetch("SELECT order_id FROM order_events ORDER BY seq")]
    assert sorted(created) == sorted(orders) and len(orders) == 1  # one order, one order.created
    assert (tried[0] in orders) == (first.status_code == 201)


async def test_mark_paid_twice_records_one_order_paid(client, db_pool):
    tier = await put_tier(client)
    order = await buy(client, tier["id"])

    assert (await admin(client, order, "mark-paid")).status_code == 200
    assert (await admin(client, order, "mark-paid")).status_code == 200

    recorded = await events(db_pool, order["id"])
    assert [(kind, data.order.status) for kind, data in recorded] == [
        ("order.created", "pending_payment"),
        ("order.paid", "paid"),
    ]


async def test_cancel_twice_records_one_order_cancelled(client, db_pool):
    tier = await put_tier(client)
    order = await buy(client, tier["id"])
    await admin(client, order, "mark-paid")

    await admin(client, order, "cancel")
    await admin(client, order, "cancel")

    recorded = await events(db_pool, order["id"])
    assert [kind for kind, _ in recorded] == ["order.created", "order.paid", "order.cancelled"]
    assert recorded[-1][1].order.cancelled_at is not None


async def test_a_refused_payment_records_nothing(client, db_pool):
    tier = await put_tier(client)
    order = await buy(client, tier["id"])
    await admin(client, order, "cancel")

    assert (await admin(client, order, "mark-paid")).status_code == 409

    assert [kind for kind, _ in await events(db_pool, order["id"])] == ["order.created", "order.cancelled"]


async def test_expiry_records_order_expired_and_a_late_payment_order_paid(client, db_pool, services):
    tier = await put_tier(client)
    order = await buy(client, tier["id"])

    assert (await services.lifecycle.expire_unpaid(now=LATER)).expired == 1
    assert (await services.lifecycle.expire_unpaid(now=LATER)).expired == 0
    await admin(client, order, "mark-paid")

    recorded = await events(db_pool, order["id"])
    assert [(kind, data.order.status) for kind, data in recorded] == [
        ("order.created", "pending_payment"),
        ("order.expired", "expired"),
        ("order.paid", "paid"),
    ]
