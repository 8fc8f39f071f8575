"""PostgreSQL reads and writes of payments. No domain rules."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec

from service.cursors import decode_cursor, encode_cursor
from service.payments.dto import PaymentPage, PaymentRecord, PaymentView
from service.payments.payload import Delivery, transaction_time
from service.payments.sql import DECIDE, FETCH_PAYMENT, INSERT_DELIVERY, LIST_PAYMENTS, LOCK_ORDERS_BY_CODE


class OrderToPay(msgspec.Struct, frozen=True):
    id: uuid.UUID
    payment_code: str
    status: str
    currency: str
    total: int
    payment_due_at: dt.datetime | None


async def insert_delivery(
    conn: asyncpg.Connection, delivery: Delivery, headers: dict[str, str]
) -> tuple[uuid.UUID, dt.datetime] | None:
    """Store the delivery as received (in ``conn``'s transaction); its id and arrival, or
    None when SePay's id is stored already."""
    t = delivery.transaction
    args = (
        delivery.sepay_id,
        delivery.raw,
        delivery.payload_json,
        msgspec.json.encode(headers).decode(),
        None,
        t.transfer_amount if t else None,
        t.transfer_type if t else None,
        t.account_number if t else None,
        t.reference_code if t else None,
        transaction_time(t) if t else None,
    )
    try:
        async with conn.transaction():  # a savepoint: a payload PostgreSQL refuses is kept raw alone
            row = await conn.fetchrow(INSERT_DELIVERY, *args)
    except asyncpg.DataError:
        row = await conn.fetchrow(INSERT_DELIVERY, args[0], args[1], None, *args[3:])
    return None if row is None else (row["id"], row["received_at"])


async def lock_orders(conn: asyncpg.Connection, codes: list[str]) -> list[OrderToPay]:
    rows = await conn.fetch(LOCK_ORDERS_BY_CODE, codes)
    return [OrderToPay(**dict(row)) for row in rows]


async def record_decision(
    conn: asyncpg.Connection,
    payment_id: uuid.UUID,
    status: str,
    reason: str | None,
    order_id: uuid.UUID | None,
    payment_code: str | None,
    detail: dict[str, Any],
) -> None:
    await conn.execute(DECIDE, payment_id, status, reason, order_id, payment_code, msgspec.json.encode(detail).decode())


def _view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        **{name: row[name] for name in PaymentView.__struct_fields__ if name not in ("id", "order_id", "detail")},
        "id": str(row["id"]),
        "order_id": str(row["order_id"]) if row["order_id"] else None,
        "detail": msgspec.json.decode(row["detail"]) if isinstance(row["detail"], str) else row["detail"],
    }


async def list_payments(
    pool: asyncpg.Pool, *, status: str | None, order_id: uuid.UUID | None, cursor: str | None, limit: int
) -> PaymentPage:
    before = decode_cursor(cursor) if cursor else (None, None)
    rows = await pool.fetch(LIST_PAYMENTS, status, before[0], before[1], limit + 1, order_id)
    more = len(rows) > limit
    payments = [PaymentView(**_view(row)) for row in rows[:limit]]
    last = rows[limit - 1] if more else None
    return PaymentPage(payments, encode_cursor(last["received_at"], last["id"]) if last is not None else None)


async def fetch_payment(pool: asyncpg.Pool, payment_id: uuid.UUID) -> PaymentRecord | None:
    row = await pool.fetchrow(FETCH_PAYMENT, payment_id)
    if row is None:
        return None
    payload = msgspec.json.decode(row["payload"]) if row["payload"] is not None else None
    return PaymentRecord(
        **_view(row),
        body=bytes(row["raw_body"]).decode("utf-8", errors="replace"),
        payload=payload,
        headers=msgspec.json.decode(row["headers"]),
    )
