"""An order's life after checkout: cancel, mark-paid (late payment too) and expiry, through
the real checkout and the admin API, against real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from redis.asyncio import Redis

from service.keys import Keys
from service.orders import lifecycle as lifecycle_module
from service.orders.lifecycle import OrderLifecycle
from service.redis.scripts import Scripts
from tests.api import ADMIN_HEADERS, put_tier

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)  # every order made by a test is due by then


async def buy(client, lines: dict[str, int], promo: str | None = None) -> dict:
    """Hold the seats in a new guest cart and check it out: the order."""
    headers: dict[str, str] = {}
    for tier_id, quantity in lines.items():
        client.cookies.clear()
        added = await client.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=headers)
        assert added.status_code in (200, 201), added.text
        headers.setdefault("X-Cart-Token", added.headers.get("x-cart-token", ""))
    if promo:
        assert (await client.post("/api/cart/promo", json={"code": promo}, headers=headers)).status_code == 200
    client.cookies.clear()
    response = await client.post("/api/orders", json={"email": "buyer@example.com"}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def define_promo(client, code: str, **fields) -> None:
    body = {"code": code, "kind": "fixed", "value": 1000, "currency": "VND", **fields}
    assert (await client.post("/api/admin/promo-codes", json=body, headers=ADMIN_HEADERS)).status_code == 201


async def promo_used(client, code: str) -> int:
    return (await client.get(f"/api/admin/promo-codes/{code}", headers=ADMIN_HEADERS)).json()["used"]


async def inventory(client, tier_id: str) -> dict:
    return (await client.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def admin(client, order: dict | str, action: str):
    order_id = order["id"] if isinstance(order, dict) else order
    return await client.post(f"/api/admin/orders/{order_id}/{action}", headers=ADMIN_HEADERS)


async def order_row(db_pool, order: dict):
    return await db_pool.fetchrow(
        "SELECT status, paid_at, cancelled_at, expired_at FROM orders WHERE id = $1", uuid.UUID(order["id"])
    )


async def live_tickets(db_pool, order: dict) -> int:
    return await db_pool.fetchval(
        "SELECT count(*) FROM tickets WHERE order_id = $1 AND status = 'valid'", uuid.UUID(order["id"])
    )


async def assert_tickets_match_sold(db_pool) -> None:
    """Invariant 1: a tier's live tickets are exactly its quantity_sold."""
    mismatched = await db_pool.fetch(
        "SELECT t.id FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id AND k.status = 'valid'"
        " GROUP BY t.id HAVING count(k.id) <> max(t.quantity_sold)"
    )
    assert mismatched == []


def unsold(total: int, sold: int = 0) -> dict:
    return {"total": total, "sold": sold, "held": 0, "available": total - sold, "sold_db": sold}


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_releases_the_seats_in_postgres_and_redis_and_voids_the_tickets(client, db_pool):
    one = await put_tier(client, quantity_total=10)
    two = await put_tier(client, quantity_total=5, event_id=one["event_id"])
    order = await buy(client, {one["id"]: 3, two["id"]: 2})
    assert await inventory(client, one["id"]) == unsold(10, sold=3)

    response = await admin(client, order, "cancel")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == order["id"] and body["status"] == "cancelled"
    assert {t["status"] for t in body["tickets"]} == {"void"} and len(body["tickets"]) == 5
    assert (await order_row(db_pool, order))["cancelled_at"] is not None
    assert await inventory(client, one["id"]) == unsold(10)
    assert await inventory(client, two["id"]) == unsold(5)
    await assert_tickets_match_sold(db_pool)


async def test_cancelling_twice_or_at_once_releases_the_seats_once(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    await buy(client, {tier["id"]: 4})
    order = await buy(client, {tier["id"]: 3})

    first, second = await asyncio.gather(admin(client, order, "cancel"), admin(client, order, "cancel"))
    third = await admin(client, order, "cancel")

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    assert third.json()["status"] == "cancelled"
    assert await inventory(client, tier["id"]) == unsold(10, sold=4)
    await assert_tickets_match_sold(db_pool)


async def test_cancelling_a_paid_order_releases_its_seats(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    order = await buy(client, {tier["id"]: 2})
    assert (await admin(client, order, "mark-paid")).json()["status"] == "paid"
    assert (await admin(client, order, "cancel")).json()["status"] == "cancelled"
    assert await inventory(client, tier["id"]) == unsold(10)


async def test_cancel_gives_the_promo_use_back_once(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    await define_promo(client, "SPRING", max_uses=5)
    order = await buy(client, {tier["id"]: 1}, promo="SPRING")
    assert order["discount"] == 1000 and await promo_used(client, "SPRING") == 1

    await admin(client, order, "cancel")
    await admin(client, order, "cancel")

    assert await promo_used(client, "SPRING") == 0


async def test_a_cancel_commits_even_when_redis_is_down_and_redis_errs_towards_fewer_seats(client, db_pool, settings):
    tier = await put_tier(client, quantity_total=10)
    order = await buy(client, {tier["id"]: 2})
    down = Scripts(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1), Keys(settings.key_prefix))

    state = await OrderLifecycle(db_pool, down).cancel(uuid.UUID(order["id"]))

    assert state.status == "cancelled"
    inv = await inventory(client, tier["id"])
    assert (inv["sold_db"], inv["sold"]) == (0, 2)  # until the reconciler installs the new pair


# -- mark-paid ---------------------------------------------------------------------------


async def test_mark_paid_is_idempotent(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    order = await buy(client, {tier["id"]: 2})

    first = await admin(client, order, "mark-paid")
    paid_at = (await order_row(db_pool, order))["paid_at"]
    second = await admin(client, order, "mark-paid")

    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == second.json()["status"] == "paid"
    assert paid_at is not None and (await order_row(db_pool, order))["paid_at"] == paid_at
    assert await inventory(client, tier["id"]) == unsold(10, sold=2)
    assert await live_tickets(db_pool, order) == 2


async def test_a_cancelled_order_cannot_be_paid(client, db_pool):
    tier = await put_tier(client, quantity_total=10)
    order = await buy(client, {tier["id"]: 2})
    await admin(client, order, "cancel")

    response = await admin(client, order, "mark-paid")

    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert (await order_row(db_pool, order))["status"] == "cancelled"


async def test_cancelling_an_expired_order_records_it_so_a_late_payment_is_refused(client, db_pool, services):
    tier = await put_tier(client, quantity_total=10)
    order = await buy(client, {tier["id"]: 2})
    assert (await services.lifecycle.expire_unpaid(now=LATER)).expired == 1

    cancelled = await admin(client, order, "cancel")
    paid_late = await admin(client, order, "mark-paid")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert paid_late.status_code == 409 and paid_late.json()["code"] == "conflict"
    assert await inventory(client, tier["id"]) == unsold(10)
    await assert_tickets_match_sold(db_pool)


async def test_unknown_orders_bad_ids_and_missing_admin_keys_are_refused(client):
    unknown = await admin(client, str(uuid.uuid4()), "cancel")
    bad_id = await admin(client, "not-a-uuid", "mark-paid")
    no_key = await client.post(f"/api/admin/orders/{uuid.uuid4()}/cancel")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not-found")
    assert (bad_id.status_code, bad_id.json()["code"]) == (422, "validation-error")
    assert no_key.status_code == 401


# -- expiry ------------------------------------------------------------------------------


async def test_an_unpaid_order_past_due_expires_and_a_later_buyer_can_reserve_its_seats(client, db_pool, services):
    tier = await put_tier(client, quantity_total=3)
    await define_promo(client, "SPRING")
    order = await buy(client, {tier["id"]: 3}, promo="SPRING")
    assert (await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})).status_code == 409

    assert (await services.lifecycle.expire_unpaid(now=LATER)).expired == 1

    row = await order_row(db_pool, order)
    assert row["status"] == "expired" and row["expired_at"] is not None
    assert await live_tickets(db_pool, order) == 0
    assert await promo_used(client, "SPRING") == 0
    assert await inventory(client, tier["id"]) == unsold(3)
    client.cookies.clear()
    assert (await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 3})).status_code == 201
    await assert_tickets_match_sold(db_pool)


async def test_only_unpaid_orders_due_by_now_expire(client, db_pool, services):
    tier = await put_tier(client, quantity_total=10)
    paid = await buy(client, {tier["id"]: 1})
    due = await buy(client, {tier["id"]: 2})
    not_due = await buy(client, {tier["id"]: 3})
    await admin(client, paid, "mark-paid")
    due_at = await db_pool.fetchval("SELECT payment_due_at FROM orders WHERE id = $1", uuid.UUID(due["id"]))

    assert (await services.lifecycle.expire_unpaid(now=due_at)).expired == 1

    assert [(await order_row(db_pool, o))["status"] for o in (paid, due, not_due)] == [
        "paid",
        "expired",
        "pending_payment",
    ]
    assert await inventory(client, tier["id"]) == unsold(10, sold=4)


async def test_two_concurrent_expiry_runs_release_each_order_once(client, db_pool, services):
    tier = await put_tier(client, quantity_total=40, max_per_order=2)
    for _ in range(12):
        await buy(client, {tier["id"]: 2})

    batches = await asyncio.gather(*(services.lifecycle.expire_unpaid(now=LATER, limit=5) for _ in range(4)))
    while (await services.lifecycle.expire_unpaid(now=LATER, limit=5)).picked:
        pass

    assert sum(batch.expired for batch in batches) <= 12
    assert [r["status"] for r in await db_pool.fetch("SELECT DISTINCT status FROM orders")] == ["expired"]
    assert await inventory(client, tier["id"]) == unsold(40)
    await assert_tickets_match_sold(db_pool)


# -- late payment ------------------------------------------------------------------------


async def test_a_late_payment_revives_the_order_and_its_promo_use_when_the_seats_are_free(client, db_pool, services):
    one = await put_tier(client, quantity_total=5)
    two = await put_tier(client, quantity_total=5, event_id=one["event_id"])
    await define_promo(client, "SPRING", max_uses=1)
    order = await buy(client, {one["id"]: 2, two["id"]: 1}, promo="SPRING")
    await services.lifecycle.expire_unpaid(now=LATER)
    assert (await inventory(client, one["id"]))["sold"] == 0 and await promo_used(client, "SPRING") == 0

    response = await admin(client, order, "mark-paid")

    assert response.status_code == 200, response.text
    revived = response.json()
    assert revived["status"] == "paid" and revived["total"] == order["total"]
    assert sorted(t["code"] for t in revived["tickets"]) == sorted(t["code"] for t in order["tickets"])
    assert {t["status"] for t in revived["tickets"]} == {"valid"}
    assert await promo_used(client, "SPRING") == 1
    assert await inventory(client, one["id"]) == unsold(5, sold=2)
    assert await inventory(client, two["id"]) == unsold(5, sold=1)
    await assert_tickets_match_sold(db_pool)


async def test_a_late_payment_keeps_its_discount_when_the_promo_was_used_up_meanwhile(client, db_pool, services):
    tier = await put_tier(client, quantity_total=5)
    await define_promo(client, "ONCE", max_uses=1)
    late = await buy(client, {tier["id"]: 1}, promo="ONCE")
    await services.lifecycle.expire_unpaid(now=LATER)
    await buy(client, {tier["id"]: 1}, promo="ONCE")

    response = await admin(client, late, "mark-paid")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["discount"]) == ("paid", 1000)
    assert await promo_used(client, "ONCE") == 1  # never above its limit


async def test_a_late_payment_is_refused_seats_gone_when_others_bought_the_seats(client, db_pool, services):
    one = await put_tier(client, quantity_total=5)
    two = await put_tier(client, quantity_total=5, event_id=one["event_id"])
    order = await buy(client, {one["id"]: 2, two["id"]: 2})
    await services.lifecycle.expire_unpaid(now=LATER)
    await buy(client, {two["id"]: 4})

    response = await admin(client, order, "mark-paid")

    assert response.status_code == 409
    assert response.json()["code"] == "seats-gone"
    assert response.json()["tiers"] == [{"tier_id": two["id"], "wanted": 2, "available": 1}]
    assert (await order_row(db_pool, order))["status"] == "expired"
    assert await live_tickets(db_pool, order) == 0
    assert await inventory(client, one["id"]) == unsold(5)
    assert await inventory(client, two["id"]) == unsold(5, sold=4)
    await assert_tickets_match_sold(db_pool)


async def expired_while_another_buyer_holds(client, services, held: int) -> tuple[dict, dict, dict[str, str]]:
    """A tier of 3 seats, an order of all 3 that expired, and the headers of a cart that
    then held ``held`` of them: (tier, order, buyer's headers)."""
    tier = await put_tier(client, quantity_total=3)
    order = await buy(client, {tier["id"]: 3})
    await services.lifecycle.expire_unpaid(now=LATER)
    client.cookies.clear()
    added = await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": held})
    client.cookies.clear()
    return tier, order, {"X-Cart-Token": added.headers["x-cart-token"]}


async def sold_db(db_pool, tier: dict) -> int:
    return await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", uuid.UUID(tier["id"]))


async def test_a_late_payment_and_a_buyer_holding_the_same_seats_never_oversell(client, db_pool, services):
    tier, order, buyer = await expired_while_another_buyer_holds(client, services, held=3)

    paid, bought = await asyncio.gather(
        admin(client, order, "mark-paid"),
        client.post("/api/orders", json={"email": "other@example.com"}, headers=buyer),
    )

    assert (paid.status_code == 200) != (bought.status_code == 201), (paid.text, bought.text)
    assert await sold_db(db_pool, tier) == 3
    await assert_tickets_match_sold(db_pool)


async def test_a_buyer_holding_seats_a_late_payment_took_is_refused_at_checkout(client, db_pool, services):
    tier, order, buyer = await expired_while_another_buyer_holds(client, services, held=2)

    assert (await admin(client, order, "mark-paid")).status_code == 200
    inv = await inventory(client, tier["id"])
    assert (inv["sold"], inv["held"], inv["available"]) == (3, 2, 0)  # sold + held > total, for a moment
    refused = await client.post("/api/orders", json={"email": "other@example.com"}, headers=buyer)

    assert refused.status_code == 409, refused.text
    assert await sold_db(db_pool, tier) == 3
    await assert_tickets_match_sold(db_pool)


async def test_an_order_that_cannot_expire_is_skipped_and_never_holds_back_the_others(
    client, db_pool, services, monkeypatch
):
    tier = await put_tier(client, quantity_total=10)
    orders = [await buy(client, {tier["id"]: 1}) for _ in range(4)]
    bad = uuid.UUID(orders[1]["id"])
    real_release = lifecycle_module.release_seats

    async def release_or_fail(conn, order_ids):
        if bad in order_ids:
            raise ValueError("a row this code cannot handle")  # bad data or a bug, in one order
        return await real_release(conn, order_ids)

    monkeypatch.setattr(lifecycle_module, "release_seats", release_or_fail)
    first = await services.lifecycle.expire_unpaid(now=LATER, limit=2)
    rest = await services.lifecycle.expire_unpaid(now=LATER, limit=2, after=first.last)

    assert (first.picked, first.expired, first.skipped) == (2, 1, [bad])
    assert (rest.picked, rest.expired, rest.skipped) == (2, 2, [])
    statuses = [(await order_row(db_pool, order))["status"] for order in orders]
    assert statuses == ["expired", "pending_payment", "expired", "expired"]
    assert await inventory(client, tier["id"]) == unsold(10, sold=1)  # only the skipped one keeps its seat
    await assert_tickets_match_sold(db_pool)
