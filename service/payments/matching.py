"""Finding the payment code a transfer names, and deciding what the transfer does.

Pure functions: no I/O. The code is SePay's ``code`` when it is one of ours, else every
valid code in ``content``: banks upper-case the text, strip or replace its punctuation and
wrap it in their own words (``CT DEN:... TC7KQ4MX9WE chuyen tien``), so the search runs
over the text's letters and digits alone, upper-cased; the check symbol makes a chance
match of bank text unlikely, and a candidate names an order only if one has that code.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Literal

import msgspec

from service.orders.codes import PAYMENT_PREFIX, PAYMENT_RANDOM_LENGTH, normalize_payment_code, payment_code_is_valid

CODE_LENGTH = len(PAYMENT_PREFIX) + PAYMENT_RANDOM_LENGTH + 1
# SePay's dashboard "send test" transaction says so in its content (docs/payments.md).
TEST_PING_TEXT = "giao dich thu nghiem"

Status = Literal["paid", "needs_review", "ignored"]


class Decision(msgspec.Struct, frozen=True):
    status: Status
    reason: str | None = None  # why (docs/payments.md, "Outcomes"); for paid: None or "late"


def payment_codes(code: str | None, content: str | None) -> list[str]:
    """The valid payment codes a transfer names: SePay's ``code`` if it is valid, else
    those found in ``content``, in order, each once."""
    if code and payment_code_is_valid(code):
        return [normalize_payment_code(code)]
    text = re.sub(r"[^A-Z0-9]", "", _ascii(content or "").upper())
    found: list[str] = []
    start = text.find(PAYMENT_PREFIX)
    while start != -1:
        candidate = text[start : start + CODE_LENGTH]
        if payment_code_is_valid(candidate) and candidate not in found:
            found.append(candidate)
        start = text.find(PAYMENT_PREFIX, start + 1)
    return found


def is_test_ping(content: str | None) -> bool:
    """SePay's dashboard test transaction (its text, with or without Vietnamese accents)."""
    return TEST_PING_TEXT in " ".join(_ascii(content or "").lower().split())


def _ascii(text: str) -> str:
    """Vietnamese letters without their accents (đ -> d), anything else as it is."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def same_account(ours: str | None, *theirs: str | None) -> bool:
    """True when no account is configured (nothing to check), or one of SePay's account
    numbers (the account, or its virtual sub-account) is ours."""
    if not ours:
        return True
    return any(t is not None and re.sub(r"\s", "", t) == ours for t in theirs)


def is_late(transferred_at: dt.datetime, due_at: dt.datetime | None, grace_seconds: int) -> bool:
    """A transfer dated after the order's due time and its grace."""
    return due_at is not None and transferred_at > due_at + dt.timedelta(seconds=grace_seconds)
