"""Wire shapes of the payments API (msgspec Structs)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class SePayAck(msgspec.Struct):
    """What SePay expects back from every delivery it should not send again."""

    success: bool = True


class PaymentView(msgspec.Struct):
    """A stored SePay delivery and what it did."""

    id: str
    sepay_id: int | None  # SePay's transaction id; None: the body did not name one
    status: str  # "paid", "needs_review" or "ignored"
    reason: str | None  # why (docs/payments.md, "Outcomes"); None for a payment on time
    order_id: str | None  # the order the transfer named (paid or not)
    payment_code: str | None
    amount: int | None  # transferAmount, whole VND
    transfer_type: str | None  # "in" or "out"
    account_number: str | None
    reference_code: str | None  # the bank's reference
    transaction_date: dt.datetime | None  # when the bank dated the transfer
    received_at: dt.datetime
    decided_at: dt.datetime | None
    detail: dict[str, Any]  # what the decision saw: the order's total and state, the tiers short of seats, ...


class PaymentRecord(PaymentView):
    """One payment with what was received: the body as sent (text; bytes that are not
    UTF-8 shown as U+FFFD), its JSON, and the headers kept."""

    body: str
    payload: Any  # the body as JSON; None when it is not JSON PostgreSQL could hold
    headers: dict[str, str]


class PaymentPage(msgspec.Struct):
    payments: list[PaymentView]
    next_cursor: str | None  # pass as ?cursor= for the next, older page; None at the end
