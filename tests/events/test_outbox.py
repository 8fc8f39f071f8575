"""record_event: one row in the caller's transaction, its data checked against the kind's
shape, the order's state read by the same statement."""

from __future__ import annotations

import uuid

import msgspec
import pytest

from service.events.outbox import ORDER_PAID, PAYMENT_NEEDS_REVIEW, record_event
from service.events.payloads import OrderEventData, PaymentReviewData

pytestmark = pytest.mark.usefixtures("clean_state")

ORDER_ROW = """
INSERT INTO orders (id, number, cart_id, email, currency, subtotal, discount, total, payment_code,
                    payment_due_at, event_ids)
VALUES ($1, $2, 'cart', 'b@example.com', 'VND', 1000, 0, 1000, $2, now() + interval '1 hour', '{}')
"""


async def an_order(db_pool) -> uuid.UUID:
    order_id = uuid.uuid4()
    await db_pool.execute(ORDER_ROW, order_id, f"TC-{order_id.hex[:8]}")
    return order_id


async def test_an_event_carries_the_order_as_its_transaction_left_it(db_pool):
    order_id = await an_order(db_pool)
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE orders SET status = 'paid', paid_at = now() WHERE id = $1", order_id)
        event_id = await record_event(conn, ORDER_PAID, order_id, {})
    row = await db_pool.fetchrow(
        "SELECT kind, order_id, payload::text AS payload FROM order_events WHERE id = $1", event_id
    )
    assert (row["kind"], row["order_id"]) == (ORDER_PAID, order_id)
    data = msgspec.json.decode(row["payload"], type=OrderEventData)
    assert (data.order.id, data.order.status, data.order.total) == (order_id, "paid", 1000)
    assert data.order.paid_at is not None and data.order.paid_at.utcoffset().total_seconds() == 0


async def test_a_rolled_back_transaction_leaves_no_event(db_pool):
    order_id = await an_order(db_pool)
    with pytest.raises(ZeroDivisionError):
        async with db_pool.acquire() as conn, conn.transaction():
            await record_event(conn, ORDER_PAID, order_id, {})
            1 / 0  # noqa: B018
    assert await db_pool.fetchval("SELECT count(*) FROM order_events") == 0


async def test_outside_a_transaction_it_refuses(db_pool):
    async with db_pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            await record_event(conn, ORDER_PAID, uuid.uuid4(), {})


async def test_data_of_the_wrong_shape_or_kind_is_refused(db_pool):
    async with db_pool.acquire() as conn, conn.transaction():
        with pytest.raises(msgspec.ValidationError):
            await record_event(conn, ORDER_PAID, uuid.uuid4(), {"reason": "x"})
        with pytest.raises(ValueError):
            await record_event(conn, "order.shipped", uuid.uuid4(), {})
        with pytest.raises(ValueError):
            await record_event(conn, ORDER_PAID, None, {})


async def test_a_payment_for_review_with_or_without_its_order(db_pool):
    order_id = await an_order(db_pool)
    details = {"payment_id": "p1", "reason": "amount-short", "amount": 900, "transaction_id": "92704"}
    async with db_pool.acquire() as conn, conn.transaction():
        matched = await record_event(conn, PAYMENT_NEEDS_REVIEW, order_id, details)
        unmatched = await record_event(conn, PAYMENT_NEEDS_REVIEW, None, {**details, "reason": "no-match"})
    payloads = {
        r["id"]: msgspec.json.decode(r["payload"], type=PaymentReviewData)
        for r in await db_pool.fetch("SELECT id, payload::text AS payload FROM order_events")
    }
    assert payloads[matched].order is not None and payloads[matched].order.id == order_id
    assert payloads[matched].amount == 900 and payloads[matched].currency == "VND"
    assert payloads[unmatched].order is None and payloads[unmatched].reason == "no-match"
