"""POST /api/orders through the app in process, on real Redis and PostgreSQL: the order,
its rows, the seats moved from held to sold, and every way a checkout is answered again."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from service.orders import checkout as checkout_module
from service.orders.codes import payment_code_is_valid
from tests.api import ADMIN_HEADERS, bearer, put_tier

BUYER = {"email": "Buyer@Example.COM", "name": "Lan Nguyen"}


async def add(client, tier_id: str, quantity: int, headers: dict | None = None) -> dict[str, str]:
    """Hold seats; the headers that name the cart afterwards (a new guest token, or the user's)."""
    response = await client.post(
        "/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=headers or {}
    )
    assert response.status_code in (200, 201), response.text
    token = response.headers.get("x-cart-token")
    client.cookies.clear()
    return headers or {"X-Cart-Token": token}


async def inventory(client, tier_id: str) -> dict:
    return (await client.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def order_count(db_pool) -> int:
    return await db_pool.fetchval("SELECT count(*) FROM orders")


async def test_a_guest_checks_out_and_gets_the_order_with_payment_code_and_a_ticket_per_seat(client, db_pool):
    one = await put_tier(client, quantity_total=10, price=250_000, name="Standing")
    two = await put_tier(client, quantity_total=5, price=900_000, name="VIP", event_id=one["event_id"])
    cart = await add(client, one["id"], 3)
    await add(client, two["id"], 1, cart)

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "pending_payment"
    assert order["email"] == "Buyer@example.com"  # the domain normalised, the local part kept
    assert order["name"] == "Lan Nguyen"
    assert (order["subtotal"], order["discount"], order["total"], order["currency"]) == (1_650_000, 0, 1_650_000, "VND")
    assert {(i["tier_id"], i["quantity"], i["unit_price"], i["line_total"]) for i in order["items"]} == {
        (one["id"], 3, 250_000, 750_000),
        (two["id"], 1, 900_000, 900_000),
    }
    assert order["payment"]["amount"] == 1_650_000 and payment_code_is_valid(order["payment"]["code"])
    assert len(order["tickets"]) == 4 and len({t["code"] for t in order["tickets"]}) == 4
    assert order["number"].startswith("TC-") and order["access_token"]

    row = await db_pool.fetchrow("SELECT * FROM orders WHERE id = $1", uuid.UUID(order["id"]))
    assert row["cart_id"] and row["user_id"] is None and row["event_ids"] == [uuid.UUID(one["event_id"])]
    assert row["access_token_hash"] is not None and row["payment_due_at"] > row["created_at"]
    assert await db_pool.fetchval("SELECT count(*) FROM tickets WHERE order_id = $1", row["id"]) == 4
    assert await inventory(client, one["id"]) == {"total": 10, "sold": 3, "held": 0, "available": 7, "sold_db": 3}
    assert await inventory(client, two["id"]) == {"total": 5, "sold": 1, "held": 0, "available": 4, "sold_db": 1}
    cart_view = (await client.get("/api/cart", headers=cart)).json()
    assert cart_view["items"] == [] and cart_view["status"] == "empty"


async def test_a_signed_in_users_order_carries_their_id_and_no_access_token(client, db_pool, settings):
    tier = await put_tier(client)
    user = bearer(settings, "user-7")
    await add(client, tier["id"], 2, user)

    response = await client.post("/api/orders", json=BUYER, headers=user)

    assert response.status_code == 201
    assert "access_token" not in response.json()
    assert await db_pool.fetchval("SELECT user_id FROM orders") == "user-7"


async def test_orders_span_events_and_carry_each_event_id(client, db_pool):
    one, two = await put_tier(client), await put_tier(client)
    cart = await add(client, one["id"], 1)
    await add(client, two["id"], 2, cart)

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert response.status_code == 201
    assert {i["event_id"] for i in response.json()["items"]} == {one["event_id"], two["event_id"]}
    stored = await db_pool.fetchval("SELECT event_ids FROM orders")
    assert sorted(map(str, stored)) == sorted([one["event_id"], two["event_id"]])
    assert (await inventory(client, two["id"]))["sold"] == 2


async def test_an_empty_cart_or_no_cart_is_refused_cart_empty(client):
    tier = await put_tier(client)
    cart = await add(client, tier["id"], 1)
    await client.delete("/api/cart", headers=cart)

    emptied = await client.post("/api/orders", json=BUYER, headers=cart)
    no_cart = await client.post("/api/orders", json=BUYER)

    assert (emptied.status_code, emptied.json()["code"]) == (409, "cart-empty")
    assert (no_cart.status_code, no_cart.json()["code"]) == (409, "cart-empty")


async def test_an_expired_hold_is_refused_reservation_expired_and_its_seats_released(client, db_pool, monkeypatch):
    one, two = await put_tier(client, quantity_total=5), await put_tier(client, quantity_total=5)
    cart = await add(client, one["id"], 2)
    await add(client, two["id"], 1, cart)
    real_now = checkout_module.now_ms
    monkeypatch.setattr(checkout_module, "now_ms", lambda: real_now() + 3600 * 1000)

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    assert (response.status_code, response.json()["code"]) == (409, "reservation-expired")
    assert await order_count(db_pool) == 0
    # A part found expired is released; the other one is put back as it was.
    held = [(await inventory(client, t["id"]))["held"] for t in (one, two)]
    assert sorted(held) in ([0, 1], [0, 2], [0, 0])
    assert (await client.get("/api/cart", headers=cart)).json()["status"] != "checkout"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email"},
        {"email": "a@b"},
        {"name": "no email"},
        {"email": "x@example.com", "extra": 1},
        {"email": "x@example.com", "name": ""},
    ],
)
async def test_bad_bodies_are_refused_422_and_change_nothing(client, db_pool, body):
    tier = await put_tier(client)
    cart = await add(client, tier["id"], 1)

    response = await client.post("/api/orders", json=body, headers=cart)

    assert (response.status_code, response.json()["code"]) == (422, "validation-error")
    assert await order_count(db_pool) == 0
    assert (await inventory(client, tier["id"]))["held"] == 1


async def test_a_retry_after_success_answers_the_same_order_200(client, db_pool):
    tier = await put_tier(client)
    cart = await add(client, tier["id"], 2)
    first = await client.post("/api/orders", json=BUYER, headers=cart)

    again = await client.post("/api/orders", json=BUYER, headers=cart)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()  # the guest's token too: it is derived, not stored
    assert await order_count(db_pool) == 1
    assert (await inventory(client, tier["id"]))["sold"] == 2


async def test_the_same_idempotency_key_answers_the_same_order_and_a_new_key_a_new_checkout(client, db_pool):
    tier = await put_tier(client)
    cart = await add(client, tier["id"], 1)
    key = {"Idempotency-Key": "order-attempt-1", **cart}
    first = await client.post("/api/orders", json=BUYER, headers=key)
    replay = await client.post("/api/orders", json=BUYER, headers=key)

    await add(client, tier["id"], 2, cart)
    reused_key = await client.post("/api/orders", json=BUYER, headers=key)
    new_key = await client.post("/api/orders", json=BUYER, headers={**cart, "Idempotency-Key": "order-attempt-2"})

    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    # The key names the first order even though the cart holds new seats: they stay held.
    assert (reused_key.status_code, reused_key.json()["id"]) == (200, first.json()["id"])
    assert new_key.status_code == 201 and new_key.json()["id"] != first.json()["id"]
    assert sum(i["quantity"] for i in new_key.json()["items"]) == 2
    assert await order_count(db_pool) == 2
    assert await inventory(client, tier["id"]) == {"total": 100, "sold": 3, "held": 0, "available": 97, "sold_db": 3}


async def test_twenty_concurrent_checkouts_of_one_cart_make_one_order(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    cart = await add(client, tier["id"], 4)

    responses = await asyncio.gather(*(client.post("/api/orders", json=BUYER, headers=cart) for _ in range(20)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409}
    answered = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(answered) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert busy.json()["code"] == "checkout-in-progress" and busy.headers["retry-after"]
    assert await order_count(db_pool) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM tickets") == 4
    assert await inventory(client, tier["id"]) == {"total": 10, "sold": 4, "held": 0, "available": 6, "sold_db": 4}


async def test_idempotency_keys_are_checked(client):
    tier = await put_tier(client)
    cart = await add(client, tier["id"], 1)

    response = await client.post("/api/orders", json=BUYER, headers={**cart, "Idempotency-Key": "k" * 201})

    assert (response.status_code, response.json()["code"]) == (422, "validation-error")


async def test_an_order_with_nothing_to_pay_is_paid_at_checkout_and_never_expires(client, db_pool, services):
    tier = await put_tier(client, quantity_total=10, price=300_000)
    created = await client.post(
        "/api/admin/promo-codes", headers=ADMIN_HEADERS, json={"code": "ONTHEHOUSE", "kind": "percent", "value": 100}
    )
    assert created.status_code in (200, 201), created.text
    cart = await add(client, tier["id"], 2)
    assert (await client.post("/api/cart/promo", json={"code": "ONTHEHOUSE"}, headers=cart)).status_code == 200

    response = await client.post("/api/orders", json=BUYER, headers=cart)

    order = response.json()
    assert response.status_code == 201, response.text
    assert (order["status"], order["total"], order["payment"]) == ("paid", 0, None)
    row = await db_pool.fetchrow("SELECT payment_code, payment_due_at, paid_at FROM orders")
    assert row["payment_code"] is None and row["payment_due_at"] is None and row["paid_at"] is not None
    far = await services.lifecycle.expire_unpaid(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=30))
    assert far.picked == 0
    again = await client.get(f"/api/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]})
    assert again.json()["status"] == "paid" and again.json()["payment"] is None
    assert all(t["status"] == "valid" for t in again.json()["tickets"])
    assert (await inventory(client, tier["id"]))["sold"] == 2
