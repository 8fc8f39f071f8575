"""The outbox: an event is a row written in the transaction of the change that causes it,
so none is lost and none is sent for a change that rolled back. Never sends anything (the
worker does: delivery.py).

Call ``record_event`` with the order's row locked (``SELECT ... FOR UPDATE``, as
OrderLifecycle does), so an order's events are numbered in the order their changes commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec

from service.events.payloads import (
    DETAILS,
    EVENT_KINDS,
    ORDER_CANCELLED,
    ORDER_CREATED,
    ORDER_EXPIRED,
    ORDER_PAID,
    PAYMENT_NEEDS_REVIEW,
    EventKind,
)
from service.events.sql import RECORD_EVENT

__all__ = [
    "EVENT_KINDS",
    "ORDER_CANCELLED",
    "ORDER_CREATED",
    "ORDER_EXPIRED",
    "ORDER_PAID",
    "PAYMENT_NEEDS_REVIEW",
    "EventKind",
    "record_event",
]


async def record_event(
    conn: asyncpg.Connection, kind: str, order_id: uuid.UUID | None, data: Mapping[str, Any]
) -> uuid.UUID:
    """Write one event in ``conn``'s transaction (open one first); its id.

    ``data``: what the kind adds to the order's state, checked against its shape
    (``payloads.DETAILS``): ``{}`` for the order.* kinds; for payment.needs_review
    ``{"payment_id", "reason", "amount", "currency"?, "transaction_id"?}``. The order's state
    (``data.order``) is read by the same statement, so it is what this transaction wrote;
    ``order_id`` None (a payment matching no order) gives ``order: null``.
    ValueError for an unknown kind, msgspec.ValidationError for data of the wrong shape.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("record_event runs in the transaction of the change it records")
    if kind not in DETAILS:
        raise ValueError(f"unknown event kind {kind!r}")
    if order_id is None and kind != PAYMENT_NEEDS_REVIEW:
        raise ValueError(f"an {kind} event needs its order")
    details = msgspec.convert(dict(data), DETAILS[kind])
    event_id: uuid.UUID = await conn.fetchval(RECORD_EVENT, kind, order_id, msgspec.json.encode(details).decode())
    return event_id
