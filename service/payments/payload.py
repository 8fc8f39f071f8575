"""What SePay POSTs: one bank transaction (docs/payments.md, "The payload").

SePay may add fields: the Struct takes unknown ones (it never forbids them). A body that is
not such a transaction (not JSON, a field of the wrong type, a number PostgreSQL cannot
hold, NUL in a text) is still kept, raw, for a person to read: ``read_delivery`` never
raises.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from service.validation import NO_NUL_PATTERN

VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")  # no daylight saving since 1975
BIGINT = Meta(ge=-(2**63), le=2**63 - 1)
Text = Annotated[str, Meta(pattern=NO_NUL_PATTERN)]


class SePayTransaction(msgspec.Struct, rename="camel", kw_only=True):
    """A transaction on a bank account linked to SePay, as its webhook sends it. Unknown
    fields are accepted (SePay may add some) and kept in the stored raw body."""

    id: Annotated[int, BIGINT, Meta(description="SePay's transaction id: the same on every retry of a delivery")]
    gateway: Text | None = None
    transaction_date: (
        Annotated[Text, Meta(description='"YYYY-MM-DD HH:MM:SS", the bank\'s time in Vietnam (UTC+7), without offset')]
        | None
    ) = None
    account_number: Annotated[Text, Meta(description="The account the money moved on")] | None = None
    sub_account: Text | None = None
    code: Annotated[Text, Meta(description="The payment code SePay found in content, or null")] | None = None
    content: Annotated[Text, Meta(description="The transfer's text as the bank reports it")] | None = None
    transfer_type: Annotated[Text, Meta(description='"in" (money received) or "out"')]
    transfer_amount: Annotated[int, BIGINT, Meta(description="Whole VND, always positive")]
    accumulated: Annotated[int, BIGINT] | None = None
    reference_code: Text | None = None
    description: Text | None = None


class _IdOnly(msgspec.Struct):
    id: Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]


class Delivery(msgspec.Struct, frozen=True):
    """One delivery as read: the transaction (None: unreadable), SePay's id when even an
    unreadable body names one, and the body as jsonb text when PostgreSQL can hold it."""

    raw: bytes
    transaction: SePayTransaction | None
    sepay_id: int | None
    payload_json: str | None
    problem: str | None  # why the body is unreadable


def read_delivery(raw: bytes) -> Delivery:
    """The delivery of a body; never raises."""
    payload_json = _as_jsonb(raw)
    try:
        transaction = msgspec.json.decode(raw, type=SePayTransaction)
    except msgspec.MsgspecError as exc:
        try:
            sepay_id: int | None = msgspec.json.decode(raw, type=_IdOnly).id
        except msgspec.MsgspecError:
            sepay_id = None
        return Delivery(raw, None, sepay_id, payload_json, str(exc)[:500])
    return Delivery(raw, transaction, transaction.id, payload_json, None)


def _as_jsonb(raw: bytes) -> str | None:
    """The body as text for a jsonb column, or None when PostgreSQL would refuse it (not
    JSON, not UTF-8, a \\u0000 or an unpaired surrogate inside)."""
    try:
        value: Any = msgspec.json.decode(raw)
        text = raw.decode("utf-8")
        msgspec.json.encode(value).decode("utf-8")  # an unpaired surrogate cannot be encoded
    except (msgspec.MsgspecError, UnicodeError):
        return None
    return None if "\\u0000" in text else text


def transaction_time(transaction: SePayTransaction) -> dt.datetime | None:
    """transactionDate as an instant (it is Vietnam time, without offset); None when absent
    or not in SePay's form."""
    if transaction.transaction_date is None:
        return None
    try:
        local = dt.datetime.strptime(transaction.transaction_date.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return local.replace(tzinfo=VIETNAM)
