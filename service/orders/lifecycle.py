"""An order's life after checkout: cancel, payment (a late one included) and expiry.

Seats move only through guarded UPDATEs of ``ticket_tiers``, in the same transaction as the
order's status and its tickets, so PostgreSQL alone prevents oversell; Redis learns the new
``(sold, version)`` pairs after the commit, by the version rule. Never touches a cart part.
Each change of status records its event (order.paid, order.cancelled, order.expired) in the
same transaction, under the order's row lock (service/events/outbox.py); no change, no event.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import asyncpg
import msgspec

from service.errors import Conflict, NotFound, SeatsGone
from service.events.outbox import ORDER_CANCELLED, ORDER_EXPIRED, ORDER_PAID, record_event
from service.inventory.sold import SoldChange, count_sold_changes
from service.orders.sql import (
    DUE_PAGE,
    LOCK_DUE,
    LOCK_ORDER,
    MARK_CANCELLED,
    MARK_EXPIRED,
    MARK_PAID,
    REVIVE_TICKETS,
    SHIFT_SOLD,
    VOID_TICKETS,
)
from service.redis.scripts import Scripts

log = logging.getLogger("ticket_cart.orders")

DEFAULT_EXPIRY_BATCH = 500


class OrderState(msgspec.Struct, frozen=True):
    id: uuid.UUID
    number: str
    status: str
    currency: str
    total: int
    promo_code: str | None
    payment_due_at: dt.datetime | None
    paid_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    expired_at: dt.datetime | None


class PromoUses(Protocol):
    """What the lifecycle needs of the promo service (``service.promo``)."""

    async def release(self, conn: asyncpg.Connection, order_id: uuid.UUID) -> Any:
        """Give the order's promo use back; idempotent; no-op without a redemption."""

    async def retake(self, conn: asyncpg.Connection, order_id: uuid.UUID) -> bool:
        """Count a released use again while the code has one left; False, changing nothing, if not."""


class _Refused(NamedTuple):
    tier_id: str
    delta: int
    unsold: int


async def _shift_sold(conn: asyncpg.Connection, deltas: Counter[uuid.UUID]) -> tuple[list[SoldChange], list[_Refused]]:
    if not deltas:
        return [], []
    tiers = sorted(deltas)
    rows = await conn.fetch(SHIFT_SOLD, tiers, [deltas[t] for t in tiers])
    changes = [
        SoldChange(str(r["event_id"]), str(r["tier_id"]), r["quantity_sold"], r["sold_version"], r["delta"])
        for r in rows
        if r["event_id"] is not None
    ]
    refused = [_Refused(str(r["tier_id"]), r["delta"], r["unsold"] or 0) for r in rows if r["event_id"] is None]
    return changes, refused


async def release_seats(conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]) -> list[SoldChange]:
    """Void the orders' live tickets and give exactly those seats back. In a transaction.

    The seats released are the tickets voided by this call, so releasing twice gives
    nothing back the second time, and live tickets keep matching quantity_sold.
    """
    voided = Counter(r["tier_id"] for r in await conn.fetch(VOID_TICKETS, list(order_ids)))
    changes, refused = await _shift_sold(conn, Counter({t: -n for t, n in voided.items()}))
    if refused:
        # Fewer seats sold than live tickets: invariant 1 was already broken. Roll back
        # rather than hide it; the reconciler's report says where.
        raise RuntimeError(f"quantity_sold is below the live tickets of tiers {[r.tier_id for r in refused]}")
    return changes


async def release_order_seats(
    conn: asyncpg.Connection, order_id: uuid.UUID, promos: PromoUses | None = None
) -> list[SoldChange]:
    """Release one order's seats and give its promo use back. Call it in a transaction
    that also changes the order's status; install the result after the commit."""
    changes = await release_seats(conn, [order_id])
    if promos is not None:
        await promos.release(conn, order_id)
    return changes


async def take_seats_again(conn: asyncpg.Connection, order_id: uuid.UUID) -> list[SoldChange]:
    """Revive an expired order's tickets, taking their seats again only where the tier
    still has them (the PostgreSQL guard). SeatsGone, changing nothing, if any lacks them."""
    revived = Counter(r["tier_id"] for r in await conn.fetch(REVIVE_TICKETS, order_id))
    changes, refused = await _shift_sold(conn, revived)
    if refused:
        raise SeatsGone(
            "The order's seats have been sold since it expired; refund the payment",
            tiers=[{"tier_id": r.tier_id, "wanted": r.delta, "available": max(0, r.unsold)} for r in refused],
        )
    return changes


class ExpiryBatch(msgspec.Struct):
    """One page of the unpaid-order expiry."""

    picked: int  # due orders looked at
    last: tuple[dt.datetime, uuid.UUID] | None  # the key to go on after
    expired: int = 0
    skipped: list[uuid.UUID] = msgspec.field(default_factory=list)  # failed; logged, left pending


def _state(record: asyncpg.Record) -> OrderState:
    return OrderState(**{k: record[k] for k in OrderState.__struct_fields__})


class OrderLifecycle:
    """Admin payment outcomes and the worker's expiry, on one PostgreSQL pool."""

    def __init__(self, pool: asyncpg.Pool, scripts: Scripts, promos: PromoUses | None = None) -> None:
        self.pool = pool
        self.scripts = scripts
        self.promos = promos

    async def _locked(self, conn: asyncpg.Connection, order_id: uuid.UUID) -> OrderState:
        record = await conn.fetchrow(LOCK_ORDER, order_id)
        if record is None:
            raise NotFound(f"No order {order_id}")
        return _state(record)

    async def cancel(self, order_id: uuid.UUID) -> OrderState:
        """pending_payment or paid -> cancelled, releasing the seats and the promo use.

        Idempotent: a cancelled order stays as it is. An expired order becomes cancelled
        too (its seats went back when it expired, so nothing is released again); that
        records the decision, so a transfer arriving later is refused, not revived.
        """
        changes: list[SoldChange] = []
        async with self.pool.acquire() as conn, conn.transaction():
            order = await self._locked(conn, order_id)
            if order.status == "cancelled":
                return order
            if order.status in ("pending_payment", "paid"):
                changes = await release_order_seats(conn, order_id, self.promos)
            order = _state(await conn.fetchrow(MARK_CANCELLED, order_id))
            await record_event(conn, ORDER_CANCELLED, order_id, {})
        await count_sold_changes(self.scripts, changes)
        return order

    async def mark_paid(self, order_id: uuid.UUID) -> OrderState:
        """pending_payment -> paid, in a transaction of its own (``pay`` says the rules)."""
        async with self.pool.acquire() as conn, conn.transaction():
            order, changes = await self.pay(conn, order_id)
        await count_sold_changes(self.scripts, changes)
        return order

    async def pay(self, conn: asyncpg.Connection, order_id: uuid.UUID) -> tuple[OrderState, list[SoldChange]]:
        """pending_payment -> paid; paid stays paid (idempotent, no second order.paid);
        cancelled -> Conflict.

        In the caller's transaction, so a payment's own record (a SePay delivery) commits
        with the order's change or not at all; the caller installs the returned sold
        changes in Redis after the commit (``count_sold_changes``).

        A late payment (expired -> paid) revives the order only if every tier still has
        its seats (SeatsGone otherwise; the caller's transaction must then roll back, or
        the part of it since a savepoint, so the payment can be refunded).
        The buyer paid the total they were quoted, so the order keeps its discount; its
        promo use is taken again only where the code still has a use left.
        """
        changes: list[SoldChange] = []
        order = await self._locked(conn, order_id)
        if order.status == "paid":
            return order, changes
        if order.status == "cancelled":
            raise Conflict("A cancelled order cannot be paid; refund the payment", order_status="cancelled")
        if order.status == "expired":
            changes = await take_seats_again(conn, order_id)
            if (
                order.promo_code is not None
                and self.promos is not None
                and not await self.promos.retake(conn, order_id)
            ):
                log.warning(
                    "order %s paid late keeps its discount; promo %s had no use left to count",
                    order_id,
                    order.promo_code,
                )
        paid = _state(await conn.fetchrow(MARK_PAID, order_id))
        await record_event(conn, ORDER_PAID, order_id, {})
        return paid, changes

    async def expire_unpaid(
        self, *, now: dt.datetime, limit: int = DEFAULT_EXPIRY_BATCH, after: tuple[dt.datetime, uuid.UUID] | None = None
    ) -> ExpiryBatch:
        """Expire the due orders of one page: up to ``limit`` orders whose payment was due at
        or before ``now``, in due order after the key ``after``.

        Each order is its own transaction, so one that fails (bad data, a bug) is skipped and
        reported, and never holds back the others; concurrent workers skip an order another
        one holds. Call again with ``after=batch.last`` while ``batch.picked == limit``.
        """
        due_after, id_after = after if after else (None, None)
        rows = await self.pool.fetch(DUE_PAGE, now, due_after, id_after, limit)
        batch = ExpiryBatch(picked=len(rows), last=(rows[-1]["payment_due_at"], rows[-1]["id"]) if rows else None)
        for row in rows:
            try:
                changes = await self._expire_one(row["id"], now)
            except Exception as exc:  # one bad order must not stop the expiry of the rest
                log.error("order %s could not be expired, skipped: %r", row["id"], exc, exc_info=exc)
                batch.skipped.append(row["id"])
                continue
            if changes is not None:
                batch.expired += 1
                await count_sold_changes(self.scripts, changes)
        if batch.expired or batch.skipped:
            log.info("expired %d unpaid orders, skipped %d", batch.expired, len(batch.skipped))
        return batch

    async def _expire_one(self, order_id: uuid.UUID, now: dt.datetime) -> list[SoldChange] | None:
        """Expire one due order in its own transaction; None when it is not due any more or
        another worker holds it."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(LOCK_DUE, order_id, now)
            if row is None:
                return None
            await conn.execute(MARK_EXPIRED, order_id)
            await record_event(conn, ORDER_EXPIRED, order_id, {})
            changes = await release_seats(conn, [order_id])
            if self.promos is not None and row["promo_code"] is not None:
                await self.promos.release(conn, order_id)
        return changes
