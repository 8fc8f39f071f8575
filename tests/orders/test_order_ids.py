"""Parts of one cart left in checkout naming two different earlier orders (not reachable
through the API, only by loss or by hand): PostgreSQL decides which order, if any, happened."""

from __future__ import annotations

import uuid

from service.clock import now_ms
from tests.orders.conftest import counters, guest_cart, hold, make_tier


async def name_orders(services, cart, parts: dict[str, str]) -> None:
    """Leave each event's part in checkout, naming the given order (as a try whose commit's
    outcome nobody heard does)."""
    now = now_ms()
    for event_id, order_id in parts.items():
        reply = (
            await services.scripts.checkout_begin(
                cart_id=cart.cart_id,
                event_ids=[event_id],
                order_id=order_id,
                replace="",
                now_ms=now,
                deadline_ms=now + 60_000,
            )
        )[event_id]
        assert reply.order_id == order_id


async def cart_in_two_events(services):
    """A guest cart holding 1 seat of a tier of one event and 2 of a tier of another."""
    one, two, cart = await make_tier(services), await make_tier(services), guest_cart()
    await hold(services, cart, one[0], 1)
    await hold(services, cart, two[0], 2)
    return one, two, cart


async def test_when_neither_order_exists_every_part_goes_into_one_new_order(services, db_pool):
    (_one, event_one), (_two, event_two), cart = await cart_in_two_events(services)
    x, y = sorted(str(uuid.uuid4()) for _ in range(2))
    await name_orders(services, cart, {event_one: y, event_two: x})

    result = await services.checkouts.checkout(cart, email="a@example.com", name=None, idempotency_key=None)

    assert result.created and result.order.id not in (x, y)
    assert sorted(i.quantity for i in result.order.items) == [1, 2]
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 1


async def test_when_one_order_exists_it_is_answered_and_the_other_part_stays_in_the_cart(services, db_pool):
    (one, event_one), (two, event_two), cart = await cart_in_two_events(services)
    x, y = str(uuid.uuid4()), str(uuid.uuid4())
    await name_orders(services, cart, {event_one: x, event_two: y})
    # Order x committed earlier with the first event's seat (its answer was lost).
    await db_pool.execute(
        "INSERT INTO orders (id, number, cart_id, email, currency, subtotal, total, payment_code, payment_due_at,"
        " event_ids) VALUES ($1, 'TC-TEST-0001', $2, 'a@example.com', 'VND', 100000, 100000, 'TCTEST', now(),"
        " $3::uuid[])",
        uuid.UUID(x),
        cart.cart_id,
        [uuid.UUID(event_one)],
    )
    await db_pool.execute(
        "INSERT INTO order_items (order_id, tier_id, event_id, name, unit_price, quantity, line_total)"
        " VALUES ($1, $2, $3, 'Tier', 100000, 1, 100000)",
        uuid.UUID(x),
        uuid.UUID(one),
        uuid.UUID(event_one),
    )
    version = await db_pool.fetchval(
        "UPDATE ticket_tiers SET quantity_sold = 1, sold_version = sold_version + 1"
        " WHERE id = $1 RETURNING sold_version",
        uuid.UUID(one),
    )
    await db_pool.execute("UPDATE order_items SET sold_version = $1 WHERE order_id = $2", version, uuid.UUID(x))

    result = await services.checkouts.checkout(cart, email="a@example.com", name=None, idempotency_key=None)

    assert not result.created and result.order.id == x
    assert await counters(services, one) == {"sold": 1, "held": 0, "available": 9, "sold_db": 1}
    assert await counters(services, two) == {"sold": 0, "held": 2, "available": 8, "sold_db": 0}
    view = await services.scripts.view(event_id=event_two, cart_id=cart.cart_id, now_ms=now_ms())
    assert (view.state, view.order_id) == ("open", "")  # y never committed: the part is back in the cart
