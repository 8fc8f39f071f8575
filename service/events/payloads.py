"""The events' wire shapes (docs/events.md): one envelope, one ``data`` shape per kind.

Every event's ``data`` carries ``order``, the order's state as the transaction that caused
the event left it (built by PostgreSQL, ``sql.ORDER_SNAPSHOT``); ``payment.needs_review``
adds the payment it is about (``order`` null when the payment matched no order).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Final, Literal

import msgspec

ORDER_CREATED: Final = "order.created"
ORDER_PAID: Final = "order.paid"
ORDER_EXPIRED: Final = "order.expired"
ORDER_CANCELLED: Final = "order.cancelled"
PAYMENT_NEEDS_REVIEW: Final = "payment.needs_review"

EventKind = Literal["order.created", "order.paid", "order.expired", "order.cancelled", "payment.needs_review"]
EVENT_KINDS: Final[tuple[EventKind, ...]] = (
    ORDER_CREATED,
    ORDER_PAID,
    ORDER_EXPIRED,
    ORDER_CANCELLED,
    PAYMENT_NEEDS_REVIEW,
)


class OrderSnapshot(msgspec.Struct, forbid_unknown_fields=True):
    """An order's state at the event. Money in the currency's minor unit; times UTC."""

    id: uuid.UUID
    number: str
    status: Literal["pending_payment", "paid", "cancelled", "expired"]
    currency: str
    subtotal: int
    discount: int
    total: int
    promo_code: str | None
    payment_due_at: dt.datetime | None  # None: nothing to pay (paid at checkout)
    created_at: dt.datetime
    paid_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    expired_at: dt.datetime | None


class NoDetails(msgspec.Struct, forbid_unknown_fields=True):
    """What an order.* event's caller adds: nothing (the order's state says it all)."""


class PaymentDetails(msgspec.Struct, forbid_unknown_fields=True):
    """What ``payment.needs_review``'s caller adds: the payment and why it waits for a person."""

    payment_id: str  # our record of the payment (GET /api/admin/payments)
    reason: str  # e.g. amount-short, amount-over, order-not-payable, no-match, late-seats-gone
    amount: int
    currency: str = "VND"
    transaction_id: str | None = None  # the payment provider's id (SePay's transaction id)


class OrderEventData(msgspec.Struct, forbid_unknown_fields=True):
    """``data`` of order.created, order.paid, order.expired and order.cancelled."""

    order: OrderSnapshot


class PaymentReviewData(PaymentDetails, forbid_unknown_fields=True):
    """``data`` of payment.needs_review."""

    order: OrderSnapshot | None = None


DETAILS: Final[dict[str, type[msgspec.Struct]]] = {
    ORDER_CREATED: NoDetails,
    ORDER_PAID: NoDetails,
    ORDER_EXPIRED: NoDetails,
    ORDER_CANCELLED: NoDetails,
    PAYMENT_NEEDS_REVIEW: PaymentDetails,
}
DATA: Final[dict[str, type[msgspec.Struct]]] = {
    ORDER_CREATED: OrderEventData,
    ORDER_PAID: OrderEventData,
    ORDER_EXPIRED: OrderEventData,
    ORDER_CANCELLED: OrderEventData,
    PAYMENT_NEEDS_REVIEW: PaymentReviewData,
}


class Envelope(msgspec.Struct):
    """The body every delivery sends (Standard Webhooks' recommended shape). ``data`` is the
    kind's shape (``DATA``), encoded; a receiver decodes it by ``type``."""

    type: EventKind
    timestamp: dt.datetime  # when the event was recorded (its transaction's time)
    data: msgspec.Raw
