"""PostgreSQL queries on orders, order items and tickets. All parameterised; no domain rules.

The checkout writes an order in one statement (the order, its items, a ticket per seat and
the guarded ``quantity_sold`` update of every tier), so its transaction is a few round
trips whatever the cart holds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

import asyncpg
import msgspec

from service.orders.dto import OrderItem, OrderSummary, Ticket
from service.orders.lifecycle import SoldChange
from service.orders.outcome import order_lock_key


class NewItem(msgspec.Struct, frozen=True):
    tier_id: uuid.UUID
    event_id: uuid.UUID
    name: str
    unit_price: int
    quantity: int
    line_total: int
    discount: int


class NewTicket(msgspec.Struct, frozen=True):
    id: uuid.UUID
    tier_id: uuid.UUID
    event_id: uuid.UUID
    code: str


class OrderFields(msgspec.Struct, frozen=True):
    """What an order is, whether being written or read back."""

    id: uuid.UUID
    number: str
    cart_id: str
    user_id: str | None
    email: str
    name: str | None
    currency: str
    subtotal: int
    discount: int
    total: int
    promo_code: str | None
    payment_code: str | None  # None: nothing to pay (a 100 % promo)
    access_token_hash: bytes | None


class NewOrder(OrderFields, frozen=True):
    payment_ttl_seconds: int
    idempotency_key: str | None
    event_ids: list[uuid.UUID]
    items: list[NewItem]  # one per tier, sorted by tier id
    tickets: list[NewTicket]


class Inserted(NamedTuple):
    created_at: dt.datetime
    payment_due_at: dt.datetime | None  # None: nothing to pay
    status: str  # pending_payment, or paid when there is nothing to pay
    sold: list[SoldChange]  # with each change's delta: the order's seats of the tier


class TierGuardFailed(Exception):
    """Some tiers have fewer seats left in PostgreSQL than the order takes."""

    def __init__(self, tier_ids: list[str]) -> None:
        super().__init__(f"not enough seats in PostgreSQL for tiers {tier_ids}")
        self.tier_ids = tier_ids


class OrderRecord(OrderFields, frozen=True):
    status: str
    payment_due_at: dt.datetime | None
    created_at: dt.datetime
    items: list[OrderItem]
    tickets: list[Ticket]


# Tier rows are locked in id order (as lifecycle.py's SHIFT_SOLD does), so two checkouts,
# or a checkout and a cancel, can never deadlock. A tier whose guard fails is missing
# from the rows; a cart with no tier updated still returns one row (LEFT JOIN). The order
# row is written only once O's advisory lock is held (`writing`), and the lock is kept to
# the end of the transaction: outcome.order_outcome waits on it, so its look-up of O is
# final. Each item records the sold_version its seats produced (lua/include/sold.lua).
# An order with nothing to pay is paid at once: no payment code, no due time. A signed-in
# buyer's saved cart (service/cart/saved.py) is emptied as of this checkout, so a copy read
# before it can never bring the bought seats back after a Redis loss.
INSERT_ORDER = """
WITH new_order AS (
    INSERT INTO orders (id, number, cart_id, user_id, email, name, currency, subtotal, discount, total,
                        promo_code, payment_code, payment_due_at, access_token_hash, idempotency_key, event_ids,
                        status, paid_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
           CASE WHEN $10::bigint > 0 THEN now() + make_interval(secs => $13) END,
           $14, $15, $16::uuid[],
           CASE WHEN $10::bigint > 0 THEN 'pending_payment' ELSE 'paid' END,
           CASE WHEN $10::bigint > 0 THEN NULL ELSE now() END
    FROM (SELECT pg_advisory_xact_lock($28)) AS writing
    RETURNING created_at, payment_due_at, status
), locked AS (
    SELECT id FROM ticket_tiers WHERE id = ANY($17::uuid[]) ORDER BY id FOR UPDATE
), sold AS (
    UPDATE ticket_tiers t
    SET quantity_sold = t.quantity_sold + i.quantity, sold_version = t.sold_version + 1, updated_at = now()
    FROM unnest($17::uuid[], $21::int[]) AS i (tier_id, quantity) JOIN locked l ON l.id = i.tier_id
    WHERE t.id = i.tier_id AND t.quantity_sold + i.quantity <= t.quantity_total
    RETURNING t.id, t.event_id, t.quantity_sold, t.sold_version
), items AS (
    INSERT INTO order_items (order_id, tier_id, event_id, name, unit_price, quantity, line_total, discount,
                             sold_version)
    SELECT $1, i.tier_id, i.event_id, i.name, i.unit_price, i.quantity,
           i.line_total, i.discount, s.sold_version
    FROM unnest($17::uuid[], $18::uuid[], $19::text[], $20::bigint[], $21::int[], $22::bigint[], $23::bigint[])
         AS i (tier_id, event_id, name, unit_price, quantity, line_total, discount)
    JOIN sold s ON s.id = i.tier_id
), tickets AS (
    INSERT INTO tickets (id, order_id, tier_id, event_id, code)
    SELECT t.id, $1, t.tier_id, t.event_id, t.code
    FROM unnest($24::uuid[], $25::uuid[], $26::uuid[], $27::text[]) AS t (id, tier_id, event_id, code)
), saved_cart AS (
    UPDATE user_carts SET parts = '{}', promo_code = NULL, saved_ms = $29, updated_at = now()
    WHERE user_id = $4 AND saved_ms < $29
)
SELECT o.created_at, o.payment_due_at, o.status, s.id AS tier_id, s.event_id, s.quantity_sold, s.sold_version
FROM new_order o LEFT JOIN sold s ON true
"""

_ORDER_COLUMNS = (
    "o.id, o.number, o.cart_id, o.user_id, o.status, o.email, o.name, o.currency, o.subtotal, o.discount,"
    " o.total, o.promo_code, o.payment_code, o.payment_due_at, o.access_token_hash, o.created_at"
)

FETCH_ORDER = f"""
SELECT {_ORDER_COLUMNS},
    (SELECT coalesce(json_agg(json_build_object(
                'tier_id', i.tier_id, 'event_id', i.event_id, 'name', i.name, 'quantity', i.quantity,
                'unit_price', i.unit_price, 'line_total', i.line_total, 'discount', i.discount)
            ORDER BY i.event_id, i.tier_id), '[]'::json)
     FROM order_items i WHERE i.order_id = o.id) AS items,
    (SELECT coalesce(json_agg(json_build_object(
                'id', t.id, 'tier_id', t.tier_id, 'event_id', t.event_id, 'code', t.code, 'status', t.status)
            ORDER BY t.tier_id, t.id), '[]'::json)
     FROM tickets t WHERE t.order_id = o.id) AS tickets
FROM orders o WHERE o.id = $1
"""

ORDER_BY_IDEMPOTENCY_KEY = "SELECT id FROM orders WHERE cart_id = $1 AND idempotency_key = $2"

EXISTING_ORDERS = "SELECT id FROM orders WHERE id = ANY($1::uuid[])"

SOLD_PAIRS = "SELECT event_id, id, quantity_sold, sold_version FROM ticket_tiers WHERE id = ANY($1::uuid[])"

# What each order's commit changed (its items' seats and the versions they produced).
ORDER_CHANGES = """
SELECT i.order_id, i.event_id, i.tier_id, i.quantity, i.sold_version
FROM order_items i WHERE i.order_id = ANY($1::uuid[])
ORDER BY i.order_id, i.event_id, i.tier_id
"""

# The cart's newest order that still lives (neither expired nor cancelled).
LAST_LIVE_ORDER = """
SELECT id FROM orders WHERE cart_id = $1 AND status IN ('pending_payment', 'paid')
ORDER BY created_at DESC LIMIT 1
"""

# Newest first; the cursor is the last row's (created_at, id), so pages never overlap or
# skip when orders are added meanwhile. Served by orders_user_created.
USER_ORDERS = """
SELECT o.id, o.number, o.status, o.currency, o.total, o.payment_due_at, o.created_at,
       (SELECT coalesce(sum(i.quantity), 0) FROM order_items i WHERE i.order_id = o.id) AS item_count
FROM orders o
WHERE o.user_id = $1 AND ($2::timestamptz IS NULL OR (o.created_at, o.id) < ($2, $3::uuid))
ORDER BY o.created_at DESC, o.id DESC
LIMIT $4
"""


async def insert_order(conn: asyncpg.Connection, order: NewOrder, *, now_ms: int) -> Inserted:
    """Write the order, its items and tickets, and take its seats. In a transaction.
    ``now_ms``: the checkout's clock, the time its buyer's saved cart is emptied as of.

    TierGuardFailed (roll back) when a tier has too few seats left; asyncpg's
    UniqueViolationError names the constraint on a clash (order id, number, codes).
    """
    items, tickets = order.items, order.tickets
    rows = await conn.fetch(
        INSERT_ORDER,
        order.id, order.number, order.cart_id, order.user_id, order.email, order.name, order.currency,
        order.subtotal, order.discount, order.total, order.promo_code, order.payment_code,
        float(order.payment_ttl_seconds), order.access_token_hash, order.idempotency_key, order.event_ids,
        [i.tier_id for i in items], [i.event_id for i in items], [i.name for i in items],
        [i.unit_price for i in items], [i.quantity for i in items], [i.line_total for i in items],
        [i.discount for i in items],
        [t.id for t in tickets], [t.tier_id for t in tickets], [t.event_id for t in tickets],
        [t.code for t in tickets], order_lock_key(order.id), now_ms,
    )
    quantities = {str(i.tier_id): i.quantity for i in items}
    sold = [
        SoldChange(str(r["event_id"]), str(r["tier_id"]), r["quantity_sold"], r["sold_version"],
                   quantities[str(r["tier_id"])])
        for r in rows if r["tier_id"] is not None
    ]
    if len(sold) < len(items):
        updated = {pair.tier_id for pair in sold}
        raise TierGuardFailed(sorted(str(i.tier_id) for i in items if str(i.tier_id) not in updated))
    return Inserted(rows[0]["created_at"], rows[0]["payment_due_at"], rows[0]["status"], sold)


def _record(row: asyncpg.Record) -> OrderRecord:
    fields = {k: row[k] for k in OrderRecord.__struct_fields__ if k not in ("items", "tickets")}
    return OrderRecord(
        **fields,
        items=msgspec.json.decode(row["items"], type=list[OrderItem]),
        tickets=msgspec.json.decode(row["tickets"], type=list[Ticket]),
    )


async def fetch_order(conn: asyncpg.Pool | asyncpg.Connection, order_id: uuid.UUID) -> OrderRecord | None:
    row = await conn.fetchrow(FETCH_ORDER, order_id)
    return _record(row) if row else None


async def order_id_by_idempotency_key(
    conn: asyncpg.Pool | asyncpg.Connection, cart_id: str, key: str
) -> uuid.UUID | None:
    return await conn.fetchval(ORDER_BY_IDEMPOTENCY_KEY, cart_id, key)


async def existing_orders(conn: asyncpg.Pool | asyncpg.Connection, order_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {r["id"] for r in await conn.fetch(EXISTING_ORDERS, order_ids)}


async def sold_pairs(conn: asyncpg.Pool | asyncpg.Connection, tier_ids: list[uuid.UUID]) -> list[SoldChange]:
    """The tiers' current (quantity_sold, sold_version), to install in Redis."""
    rows = await conn.fetch(SOLD_PAIRS, tier_ids)
    return [SoldChange(str(r["event_id"]), str(r["id"]), r["quantity_sold"], r["sold_version"]) for r in rows]


async def order_changes(
    conn: asyncpg.Pool | asyncpg.Connection, order_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[SoldChange]]:
    """What each committed order's checkout changed, per tier: (sold unknown: 0, the version
    its seats produced, its seats as delta). Orders not in PostgreSQL are not in the answer.

    Items written before versions were recorded fall back to the tier's current pair,
    installed by the version rule as before (safe, possibly counting seats twice a moment)."""
    changes: dict[uuid.UUID, list[SoldChange]] = {}
    legacy: list[tuple[uuid.UUID, uuid.UUID]] = []
    for r in await conn.fetch(ORDER_CHANGES, order_ids):
        changes.setdefault(r["order_id"], [])
        if r["sold_version"] is None:
            legacy.append((r["order_id"], r["tier_id"]))
            continue
        changes[r["order_id"]].append(
            SoldChange(str(r["event_id"]), str(r["tier_id"]), 0, r["sold_version"], r["quantity"]))
    if legacy:
        pairs = {p.tier_id: p for p in await sold_pairs(conn, sorted({t for _, t in legacy}))}
        for order_id, tier_id in legacy:
            changes[order_id].append(pairs[str(tier_id)])
    return changes


async def last_live_order(conn: asyncpg.Pool | asyncpg.Connection, cart_id: str) -> uuid.UUID | None:
    """The cart's newest order that is neither expired nor cancelled."""
    return await conn.fetchval(LAST_LIVE_ORDER, cart_id)


async def user_orders(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: str, before: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> list[OrderSummary]:
    created, order_id = before if before else (None, None)
    rows = await conn.fetch(USER_ORDERS, user_id, created, order_id, limit)
    return [
        OrderSummary(
            id=str(r["id"]), number=r["number"], status=r["status"], currency=r["currency"], total=r["total"],
            item_count=r["item_count"], payment_due_at=r["payment_due_at"], created_at=r["created_at"],
        )
        for r in rows
    ]
