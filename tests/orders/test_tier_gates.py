"""One order write per tier at a time in a process (service/orders/writer.py TierGates):
the other checkouts of a hot tier wait in the process, not in PostgreSQL's row lock queue,
and checkouts of other tiers are not held up. Real PostgreSQL, real concurrency."""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
import uuid
from collections import Counter

import pytest

from service.orders import store
from service.orders.store import NewItem, NewOrder, NewTicket
from service.orders.writer import OrderWriter, TierGates

pytestmark = pytest.mark.usefixtures("clean_state")


class Watch:
    def committing(self, order_id: str) -> None:
        pass

    def refused(self, order_id: str) -> None:
        pass


async def new_tier(db_pool, event_id: uuid.UUID, total: int = 1000) -> uuid.UUID:
    tier_id = uuid.uuid4()
    await db_pool.execute(
        "INSERT INTO ticket_tiers (id, event_id, name, price, currency, quantity_total, max_per_order)"
        " VALUES ($1, $2, 'GA', 100, 'VND', $3, 10)",
        tier_id,
        event_id,
        total,
    )
    return tier_id


def order_of(event_id: uuid.UUID, *tier_ids: uuid.UUID) -> NewOrder:
    return NewOrder(
        id=uuid.uuid4(),
        number="TC-" + secrets.token_hex(5).upper(),
        cart_id=str(uuid.uuid4()),
        user_id=None,
        email="buyer@example.com",
        name=None,
        currency="VND",
        subtotal=100 * len(tier_ids),
        discount=0,
        total=100 * len(tier_ids),
        promo_code=None,
        payment_code="TC" + secrets.token_hex(6).upper(),
        access_token_hash=secrets.token_bytes(32),
        payment_ttl_seconds=1800,
        idempotency_key=None,
        event_ids=[event_id],
        items=[
            NewItem(tier_id=t, event_id=event_id, name="GA", unit_price=100, quantity=1, line_total=100, discount=0)
            for t in sorted(tier_ids)
        ],
        tickets=[
            NewTicket(id=uuid.uuid4(), tier_id=t, event_id=event_id, code=secrets.token_hex(10).upper())
            for t in tier_ids
        ],
    )


async def test_a_tiers_writes_go_one_at_a_time_and_other_tiers_do_not_wait(db_pool, monkeypatch):
    event_id = uuid.uuid4()
    hot, other = await new_tier(db_pool, event_id), await new_tier(db_pool, event_id)
    in_flight: Counter[uuid.UUID] = Counter()
    most: Counter[uuid.UUID] = Counter()
    overlapped = []  # an other-tier write that ran while a hot one was in flight
    real_insert = store.insert_order

    async def watched_insert(conn, order, **kwargs):
        tiers = [item.tier_id for item in order.items]
        if other in tiers and in_flight[hot]:
            overlapped.append(order.id)
        for tier in tiers:
            in_flight[tier] += 1
            most[tier] = max(most[tier], in_flight[tier])
        try:
            await asyncio.sleep(0.01)  # a slow PostgreSQL: the writes would overlap if let
            return await real_insert(conn, order, **kwargs)
        finally:
            for tier in tiers:
                in_flight[tier] -= 1

    monkeypatch.setattr(store, "insert_order", watched_insert)
    writer = OrderWriter(db_pool, None, timeout_seconds=10)

    async def write(order: NewOrder) -> None:
        # alone: each order in a write of its own (no group commit), so the gates are what is seen
        await writer.transaction(order, None, None, clock=lambda: int(time.time() * 1000), watch=Watch(), alone=True)

    orders = [order_of(event_id, hot) for _ in range(12)] + [order_of(event_id, other) for _ in range(3)]
    await asyncio.gather(*(write(order) for order in orders))

    assert most[hot] == 1 and most[other] == 1
    assert overlapped  # the other tier's writes did not queue behind the hot tier's
    assert await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", hot) == 12
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 15


async def test_orders_of_several_tiers_take_their_gates_in_order_and_never_deadlock():
    gates = TierGates()
    a, b, c = sorted(uuid.uuid4() for _ in range(3))
    done = []

    async def hold(tiers: list[uuid.UUID], name: str) -> None:
        async with gates.holding(tiers):
            await asyncio.sleep(0.005)
            done.append(name)

    # Opposite orders of the same tiers: taken unsorted, two of these would wait on each other.
    await asyncio.wait_for(
        asyncio.gather(*(hold([a, b, c] if n % 2 else [c, b, a], str(n)) for n in range(10))), timeout=5
    )
    assert len(done) == 10


async def test_a_gate_no_write_holds_is_forgotten():
    gates = TierGates()
    tier = uuid.uuid4()
    async with gates.holding([tier]):
        assert len(gates._gates) == 1
    gc.collect()
    assert len(gates._gates) == 0
