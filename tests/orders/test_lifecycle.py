"""An order's life after checkout: cancel, mark-paid (late payment too) and expiry, against
real Redis and PostgreSQL. Orders are placed with SQL, as the checkout's transaction would."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from types import SimpleNamespace

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from service.keys import Keys
from service.orders.lifecycle import OrderLifecycle, expire_unpaid_orders
from service.redis.scripts import Scripts
from tests.api import ADMIN_HEADERS, api_client, put_tier

NOW = dt.datetime.now(dt.UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings, clean_state):
    async with api_client(settings) as client:
        yield client


@pytest.fixture
def scripts(redis, settings) -> Scripts:
    return Scripts(redis, Keys(settings.key_prefix))


class RecordingPromos:
    """Stands in for the promo service: records each call, made inside the transaction."""

    def __init__(self, retake_succeeds: bool = True) -> None:
        self.released: list[uuid.UUID] = []
        self.retaken: list[uuid.UUID] = []
        self.retake_succeeds = retake_succeeds

    async def release(self, conn, order_id):
        assert conn.is_in_transaction()
        self.released.append(order_id)

    async def retake(self, conn, order_id):
        assert conn.is_in_transaction()
        self.retaken.append(order_id)
        return self.retake_succeeds


async def place_order(pool, scripts: Scripts, lines: dict[str, int], *, due: dt.datetime | None = None,
                      promo_code: str | None = None) -> uuid.UUID:
    """An order as the checkout commits it: items, one ticket per seat, guarded sold update,
    and the new (sold, version) installed in Redis."""
    order_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        tiers = await conn.fetch("SELECT id, event_id, name, price, currency FROM ticket_tiers WHERE id = ANY($1::uuid[])",
                                 [uuid.UUID(t) for t in lines])
        subtotal = sum(r["price"] * lines[str(r["id"])] for r in tiers)
        discount = min(subtotal, 1000) if promo_code else 0
        await conn.execute(
            "INSERT INTO orders (id, number, cart_id, email, currency, subtotal, discount, total, promo_code,"
            " payment_code, payment_due_at, event_ids) VALUES ($1, $2, $3, 'buyer@example.com', $4, $5, $6, $7, $8,"
            " $9, $10, $11)",
            order_id, f"TC-{order_id.hex[:8]}", str(uuid.uuid4()), tiers[0]["currency"], subtotal, discount,
            subtotal - discount, promo_code, order_id.hex, due or NOW + dt.timedelta(minutes=30),
            sorted({r["event_id"] for r in tiers}),
        )
        for r in tiers:
            n = lines[str(r["id"])]
            await conn.execute("INSERT INTO order_items (order_id, tier_id, event_id, name, unit_price, quantity,"
                               " line_total) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                               order_id, r["id"], r["event_id"], r["name"], r["price"], n, n * r["price"])
            await conn.execute("INSERT INTO tickets (id, order_id, tier_id, event_id, code) SELECT gen_random_uuid(),"
                               " $1, $2, $3, gen_random_uuid()::text FROM generate_series(1, $4)",
                               order_id, r["id"], r["event_id"], n)
        sold = await conn.fetch(
            "UPDATE ticket_tiers t SET quantity_sold = quantity_sold + s.n, sold_version = sold_version + 1"
            " FROM unnest($1::uuid[], $2::int[]) AS s (id, n) WHERE t.id = s.id"
            " AND quantity_sold + s.n <= quantity_total RETURNING t.id, t.event_id, quantity_sold, sold_version",
            [uuid.UUID(t) for t in lines], list(lines.values()))
        assert len(sold) == len(lines), "sold out"
    for r in sold:
        await scripts.install_sold(event_id=str(r["event_id"]),
                                   pairs=[(str(r["id"]), r["quantity_sold"], r["sold_version"])])
    return order_id


async def inventory(api, tier_id: str) -> dict:
    response = await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)
    return response.json()["inventory"]


async def order_row(pool, order_id: uuid.UUID):
    return await pool.fetchrow("SELECT status, paid_at, cancelled_at, expired_at FROM orders WHERE id = $1", order_id)


async def live_tickets(pool, order_id: uuid.UUID) -> int:
    return await pool.fetchval("SELECT count(*) FROM tickets WHERE order_id = $1 AND status = 'valid'", order_id)


async def assert_tickets_match_sold(pool) -> None:
    """Invariant 1: a tier's live tickets are exactly its quantity_sold."""
    mismatched = await pool.fetch(
        "SELECT t.id FROM ticket_tiers t LEFT JOIN tickets k ON k.tier_id = t.id AND k.status = 'valid'"
        " GROUP BY t.id HAVING count(k.id) <> max(t.quantity_sold)")
    assert mismatched == []


async def admin(api, order_id: uuid.UUID, action: str):
    return await api.post(f"/api/admin/orders/{order_id}/{action}", headers=ADMIN_HEADERS)


async def add(api, tier_id: str, quantity: int):
    api.cookies.clear()
    return await api.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity})


# -- cancel ------------------------------------------------------------------------------


async def test_cancel_releases_seats_in_postgres_and_redis_and_voids_the_tickets(api, db_pool, scripts):
    one, two = await put_tier(api, quantity_total=10), await put_tier(api, quantity_total=5)
    order_id = await place_order(db_pool, scripts, {one["id"]: 3, two["id"]: 2})
    assert (await inventory(api, one["id"]))["sold"] == 3

    response = await admin(api, order_id, "cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["cancelled_at"]
    assert await live_tickets(db_pool, order_id) == 0
    assert await inventory(api, one["id"]) == {"total": 10, "sold": 0, "held": 0, "available": 10, "sold_db": 0}
    assert await inventory(api, two["id"]) == {"total": 5, "sold": 0, "held": 0, "available": 5, "sold_db": 0}
    await assert_tickets_match_sold(db_pool)


async def test_cancelling_twice_or_at_once_releases_the_seats_once(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    await place_order(db_pool, scripts, {tier["id"]: 4})
    order_id = await place_order(db_pool, scripts, {tier["id"]: 3})

    first, second = await asyncio.gather(admin(api, order_id, "cancel"), admin(api, order_id, "cancel"))
    third = await admin(api, order_id, "cancel")

    assert {first.status_code, second.status_code, third.status_code} == {200}
    assert third.json()["status"] == "cancelled"
    assert await inventory(api, tier["id"]) | {"sold": 4, "sold_db": 4} == await inventory(api, tier["id"])
    await assert_tickets_match_sold(db_pool)


async def test_cancelling_a_paid_order_releases_its_seats(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 2})
    assert (await admin(api, order_id, "mark-paid")).json()["status"] == "paid"
    assert (await admin(api, order_id, "cancel")).json()["status"] == "cancelled"
    assert (await inventory(api, tier["id"]))["sold_db"] == 0


async def test_cancel_gives_the_promo_use_back_in_the_same_transaction(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 1}, promo_code="SPRING")
    promos = RecordingPromos()
    await OrderLifecycle(db_pool, scripts, promos).cancel(order_id)
    await OrderLifecycle(db_pool, scripts, promos).cancel(order_id)
    assert promos.released == [order_id]


async def test_a_cancel_commits_even_when_redis_is_down_and_the_reconciler_installs_later(api, db_pool, settings):
    tier = await put_tier(api, quantity_total=10)
    live = Scripts(Redis.from_url(settings.redis_url), Keys(settings.key_prefix))
    order_id = await place_order(db_pool, live, {tier["id"]: 2})
    down = Scripts(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1), Keys(settings.key_prefix))

    order = await OrderLifecycle(db_pool, down).cancel(order_id)

    assert order.status == "cancelled"
    inv = await inventory(api, tier["id"])
    assert inv["sold_db"] == 0 and inv["sold"] == 2  # Redis errs towards fewer seats until reconciled


# -- mark-paid ---------------------------------------------------------------------------


async def test_mark_paid_is_idempotent(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 2})
    first = await admin(api, order_id, "mark-paid")
    second = await admin(api, order_id, "mark-paid")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == "paid" and first.json()["paid_at"] == second.json()["paid_at"]
    assert (await inventory(api, tier["id"]))["sold_db"] == 2
    assert await live_tickets(db_pool, order_id) == 2


async def test_a_cancelled_order_cannot_be_paid(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 2})
    await admin(api, order_id, "cancel")
    response = await admin(api, order_id, "mark-paid")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert (await order_row(db_pool, order_id))["status"] == "cancelled"


async def test_cancelling_an_expired_order_records_it_so_a_late_payment_is_refused(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 2}, due=NOW - dt.timedelta(minutes=1))
    await expire_unpaid_orders(SimpleNamespace(pool=db_pool, scripts=scripts), now=NOW)

    cancelled = await admin(api, order_id, "cancel")
    paid_late = await admin(api, order_id, "mark-paid")

    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert paid_late.status_code == 409 and paid_late.json()["code"] == "conflict"
    assert (await inventory(api, tier["id"]))["sold_db"] == 0
    await assert_tickets_match_sold(db_pool)


async def test_unknown_orders_bad_ids_and_missing_admin_keys_are_refused(api):
    unknown = await api.post(f"/api/admin/orders/{uuid.uuid4()}/cancel", headers=ADMIN_HEADERS)
    bad_id = await api.post("/api/admin/orders/not-a-uuid/mark-paid", headers=ADMIN_HEADERS)
    no_key = await api.post(f"/api/admin/orders/{uuid.uuid4()}/cancel")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not-found")
    assert (bad_id.status_code, bad_id.json()["code"]) == (422, "validation-error")
    assert no_key.status_code == 401


# -- expiry ------------------------------------------------------------------------------


async def test_an_unpaid_order_past_due_expires_and_a_later_buyer_can_reserve_its_seats(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=3)
    late = await place_order(db_pool, scripts, {tier["id"]: 3}, due=NOW - dt.timedelta(seconds=1))
    assert (await add(api, tier["id"], 1)).json()["code"] == "sold-out"
    promos = RecordingPromos()

    expired = await expire_unpaid_orders(SimpleNamespace(pool=db_pool, scripts=scripts, promos=promos), now=NOW)

    assert expired == 1
    row = await order_row(db_pool, late)
    assert row["status"] == "expired" and row["expired_at"] is not None
    assert await live_tickets(db_pool, late) == 0
    assert promos.released == []  # the order had no promo code: nothing to give back
    assert (await add(api, tier["id"], 3)).status_code == 201
    await assert_tickets_match_sold(db_pool)


async def test_only_orders_due_by_now_expire_and_their_promo_use_is_given_back(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=10)
    due = await place_order(db_pool, scripts, {tier["id"]: 2}, due=NOW, promo_code="SPRING")
    not_due = await place_order(db_pool, scripts, {tier["id"]: 3}, due=NOW + dt.timedelta(seconds=1))
    paid = await place_order(db_pool, scripts, {tier["id"]: 1}, due=NOW - dt.timedelta(hours=1))
    await admin(api, paid, "mark-paid")
    promos = RecordingPromos()

    assert await OrderLifecycle(db_pool, scripts, promos).expire_unpaid(now=NOW) == 1

    assert promos.released == [due]
    assert (await order_row(db_pool, not_due))["status"] == "pending_payment"
    assert (await order_row(db_pool, paid))["status"] == "paid"
    assert await inventory(api, tier["id"]) | {"sold": 4, "sold_db": 4} == await inventory(api, tier["id"])


async def test_two_concurrent_expiry_runs_release_each_order_once(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=40)
    orders = [await place_order(db_pool, scripts, {tier["id"]: 2}, due=NOW - dt.timedelta(minutes=1))
              for _ in range(12)]
    services = SimpleNamespace(pool=db_pool, scripts=scripts)

    counts = await asyncio.gather(*(expire_unpaid_orders(services, now=NOW, limit=5) for _ in range(4)))
    while await expire_unpaid_orders(services, now=NOW, limit=5):
        pass

    assert sum(counts) <= len(orders)
    statuses = await db_pool.fetch("SELECT DISTINCT status FROM orders")
    assert [r["status"] for r in statuses] == ["expired"]
    assert await inventory(api, tier["id"]) == {"total": 40, "sold": 0, "held": 0, "available": 40, "sold_db": 0}
    await assert_tickets_match_sold(db_pool)


# -- late payment ------------------------------------------------------------------------


async def test_a_late_payment_revives_the_order_when_its_seats_are_still_free(api, db_pool, scripts):
    one, two = await put_tier(api, quantity_total=5), await put_tier(api, quantity_total=5)
    order_id = await place_order(db_pool, scripts, {one["id"]: 2, two["id"]: 1}, due=NOW, promo_code="SPRING")
    promos = RecordingPromos()
    await OrderLifecycle(db_pool, scripts, promos).expire_unpaid(now=NOW)
    assert (await inventory(api, one["id"]))["sold"] == 0

    order = await OrderLifecycle(db_pool, scripts, promos).mark_paid(order_id)

    assert order.status == "paid" and order.paid_at and order.expired_at
    assert promos.retaken == [order_id]
    assert await live_tickets(db_pool, order_id) == 3
    assert await inventory(api, one["id"]) == {"total": 5, "sold": 2, "held": 0, "available": 3, "sold_db": 2}
    assert (await inventory(api, two["id"]))["sold"] == 1
    await assert_tickets_match_sold(db_pool)


async def test_a_late_payment_keeps_its_discount_when_the_promo_has_no_use_left(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=5)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 1}, due=NOW, promo_code="SPRING")
    promos = RecordingPromos(retake_succeeds=False)
    await OrderLifecycle(db_pool, scripts, promos).expire_unpaid(now=NOW)
    order = await OrderLifecycle(db_pool, scripts, promos).mark_paid(order_id)
    assert order.status == "paid" and order.total == 500_000 - 1000


async def test_a_late_payment_is_refused_seats_gone_when_others_bought_the_seats(api, db_pool, scripts):
    one, two = await put_tier(api, quantity_total=5), await put_tier(api, quantity_total=5)
    order_id = await place_order(db_pool, scripts, {one["id"]: 2, two["id"]: 2}, due=NOW)
    await expire_unpaid_orders(SimpleNamespace(pool=db_pool, scripts=scripts), now=NOW)
    await place_order(db_pool, scripts, {two["id"]: 4})  # someone else takes tier two

    response = await admin(api, order_id, "mark-paid")

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "seats-gone"
    assert problem["tiers"] == [{"tier_id": two["id"], "wanted": 2, "available": 1}]
    assert (await order_row(db_pool, order_id))["status"] == "expired"
    assert await live_tickets(db_pool, order_id) == 0
    assert (await inventory(api, one["id"]))["sold_db"] == 0
    assert (await inventory(api, two["id"]))["sold_db"] == 4
    await assert_tickets_match_sold(db_pool)


async def test_a_late_payment_never_oversells_against_a_concurrent_buyer(api, db_pool, scripts):
    tier = await put_tier(api, quantity_total=3)
    order_id = await place_order(db_pool, scripts, {tier["id"]: 3}, due=NOW)
    await expire_unpaid_orders(SimpleNamespace(pool=db_pool, scripts=scripts), now=NOW)

    results = await asyncio.gather(admin(api, order_id, "mark-paid"), place_order(db_pool, scripts, {tier["id"]: 3}),
                                   return_exceptions=True)

    paid = results[0].status_code == 200
    bought = not isinstance(results[1], BaseException)
    assert paid != bought  # exactly one of them got the three seats
    assert (await inventory(api, tier["id"]))["sold_db"] == 3
    await assert_tickets_match_sold(db_pool)
