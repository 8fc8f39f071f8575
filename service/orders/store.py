"""PostgreSQL queries on orders, order items and tickets. All parameterised; no domain rules.

The checkout writes an order in one statement (the order, its items, a ticket per seat, the
guarded ``quantity_sold`` update of every tier and the order's events in the outbox), so its
transaction is a few round trips whatever the cart holds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import NamedTuple

import asyncpg
import msgspec

from service.inventory.sold import SoldChange, sold_pairs
from service.orders.dto import OrderItem, OrderSummary, Ticket
from service.orders.outcome import order_lock_key
from service.orders.sql import (
    EXISTING_ORDERS,
    FETCH_ORDER,
    INSERT_ORDER,
    INSERT_ORDER_ALONE,
    LAST_LIVE_ORDER,
    ORDER_BY_IDEMPOTENCY_KEY,
    ORDER_CHANGES,
    USER_ORDERS,
)


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


TIER_GUARD_FAILED = "tier_guard_failed"  # the message refuse_unsold_tiers raises (migration 0009)


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


async def insert_order(conn: asyncpg.Connection, order: NewOrder, *, now_ms: int) -> Inserted:
    """Write the order, its items and tickets, and take its seats: one statement, which
    commits on its own outside a transaction. ``now_ms``: the checkout's clock, the time its
    buyer's saved cart is emptied as of.

    TierGuardFailed when a tier has too few seats left (the statement refused itself:
    nothing written); asyncpg's UniqueViolationError names the constraint on a clash
    (order id, number, codes).
    """
    return (await insert_orders(conn, [order], now_ms=now_ms))[0]


async def insert_orders(conn: asyncpg.Connection, orders: list[NewOrder], *, now_ms: int) -> list[Inserted]:
    """Write several orders as ``insert_order`` writes one, in one round trip: the order's
    statement once per order, pipelined (asyncpg's ``fetchmany``: a Bind and an Execute per
    order, then one Sync). Outside a transaction they form one implicit transaction that the
    Sync ends: all of them commit, or none (the first error rolls back the others too).

    TierGuardFailed when one order finds too few seats left, counting the orders before it
    in the list; then none of them is written. The answers are in the orders' order.
    """
    args = [_order_args(order, now_ms) for order in orders]
    sql = INSERT_ORDER if conn.is_in_transaction() else INSERT_ORDER_ALONE
    try:
        rows: list[asyncpg.Record] = (
            await conn.fetch(sql, *args[0]) if len(args) == 1 else await conn.fetchmany(sql, args)
        )
    except asyncpg.RaiseError as exc:
        if exc.message != TIER_GUARD_FAILED:
            raise
        raise TierGuardFailed(sorted((exc.detail or "").split(","))) from None
    by_order: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in rows:
        by_order.setdefault(row["order_id"], []).append(row)
    return [_inserted(order, by_order.get(order.id, [])) for order in orders]


def _inserted(order: NewOrder, rows: list[asyncpg.Record]) -> Inserted:
    items = order.items
    quantities = {str(i.tier_id): i.quantity for i in items}
    sold = [
        SoldChange(
            str(r["event_id"]), str(r["tier_id"]), r["quantity_sold"], r["sold_version"], quantities[str(r["tier_id"])]
        )
        for r in rows
        if r["tier_id"] is not None
    ]
    if not rows or len(sold) < len(items):
        # The statement's guard refuses first, so never reached. Not a TierGuardFailed: the
        # statement may have committed, and only a refusal by PostgreSQL is certain.
        raise RuntimeError(f"order {order.id}: the statement's tier guard let {len(items) - len(sold)} tiers through")
    return Inserted(rows[0]["created_at"], rows[0]["payment_due_at"], rows[0]["status"], sold)


def _order_args(order: NewOrder, now_ms: int) -> tuple[object, ...]:
    items, tickets = order.items, order.tickets
    return (
        order.id,
        order.number,
        order.cart_id,
        order.user_id,
        order.email,
        order.name,
        order.currency,
        order.subtotal,
        order.discount,
        order.total,
        order.promo_code,
        order.payment_code,
        float(order.payment_ttl_seconds),
        order.access_token_hash,
        order.idempotency_key,
        order.event_ids,
        [i.tier_id for i in items],
        [i.event_id for i in items],
        [i.name for i in items],
        [i.unit_price for i in items],
        [i.quantity for i in items],
        [i.line_total for i in items],
        [i.discount for i in items],
        [t.id for t in tickets],
        [t.tier_id for t in tickets],
        [t.event_id for t in tickets],
        [t.code for t in tickets],
        order_lock_key(order.id),
        now_ms,
    )


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
    order_id: uuid.UUID | None = await conn.fetchval(ORDER_BY_IDEMPOTENCY_KEY, cart_id, key)
    return order_id


async def existing_orders(conn: asyncpg.Pool | asyncpg.Connection, order_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    return {r["id"] for r in await conn.fetch(EXISTING_ORDERS, order_ids)}


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
            SoldChange(str(r["event_id"]), str(r["tier_id"]), 0, r["sold_version"], r["quantity"])
        )
    if legacy:
        pairs = {p.tier_id: p for p in await sold_pairs(conn, sorted({t for _, t in legacy}))}
        for order_id, tier_id in legacy:
            changes[order_id].append(pairs[str(tier_id)])
    return changes


async def last_live_order(conn: asyncpg.Pool | asyncpg.Connection, cart_id: str) -> uuid.UUID | None:
    """The cart's newest order that is neither expired nor cancelled."""
    order_id: uuid.UUID | None = await conn.fetchval(LAST_LIVE_ORDER, cart_id)
    return order_id


async def user_orders(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: str, before: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> list[OrderSummary]:
    created, order_id = before if before else (None, None)
    rows = await conn.fetch(USER_ORDERS, user_id, created, order_id, limit)
    return [
        OrderSummary(
            id=str(r["id"]),
            number=r["number"],
            status=r["status"],
            currency=r["currency"],
            total=r["total"],
            item_count=r["item_count"],
            payment_due_at=r["payment_due_at"],
            created_at=r["created_at"],
        )
        for r in rows
    ]
