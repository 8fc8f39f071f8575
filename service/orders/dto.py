"""Request and response bodies of the order API (msgspec Structs, validated at the edge)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from msgspec import Meta

from service.validation import RequestBody, Text


class CheckoutRequest(RequestBody):
    email: Annotated[
        Text,
        Meta(
            min_length=3,
            max_length=320,
            description="Where the order and tickets go",
            extra_json_schema={"extra": {"format": "email"}},
        ),
    ]  # Litestar reads "extra"
    name: Annotated[Text, Meta(min_length=1, max_length=200)] | None = None


class OrderItem(msgspec.Struct):
    tier_id: str
    event_id: str
    name: str
    quantity: int
    unit_price: int
    line_total: int
    discount: int


class Payment(msgspec.Struct, omit_defaults=True):
    code: str  # write it on the bank transfer
    amount: int
    due_at: dt.datetime
    # Where to transfer, when the operator configured the account (else left out):
    bank_id: str | None = None  # the bank's BIN or VietQR short name
    bank_name: str | None = None
    account_number: str | None = None
    account_name: str | None = None  # the account holder, as the bank shows it
    transfer_content: str | None = None  # the transfer's text: the payment code alone
    qr_url: str | None = None  # a VietQR image (https://img.vietqr.io) a banking app scans


class Ticket(msgspec.Struct):
    id: str
    tier_id: str
    event_id: str
    code: str
    status: str  # "valid" or "void"


class OrderView(msgspec.Struct, omit_defaults=True):
    id: str
    number: str
    status: str  # "pending_payment", "paid", "cancelled" or "expired"
    email: str
    name: str | None
    items: list[OrderItem]
    subtotal: int
    discount: int
    total: int
    currency: str
    promo_code: str | None
    payment: Payment | None  # None: nothing to pay (the order was paid at checkout)
    tickets: list[Ticket]
    created_at: dt.datetime
    # A guest's key to GET /api/orders/{id} (X-Order-Token); only in the checkout's answer.
    access_token: str | None = None


class OrderSummary(msgspec.Struct):
    id: str
    number: str
    status: str
    currency: str
    total: int
    item_count: int
    payment_due_at: dt.datetime | None  # None: nothing to pay
    created_at: dt.datetime


class OrderPage(msgspec.Struct):
    orders: list[OrderSummary]
    next_cursor: str | None  # pass as ?cursor= for the next, older page; None at the end
