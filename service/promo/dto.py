"""Promo code bodies (admin definition, apply), the stored definition, and a checkout quote."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.validation import Currency, Instant, RequestBody, Text

MAX_TIER_IDS = 200
# Long enough for a code with stray spaces around it; the 1..64 rule applies once trimmed.
RawCode = Annotated[Text, Meta(min_length=1, max_length=128, description="Case-insensitive; trimmed")]
Limit = Annotated[int, Meta(ge=1, le=2**31 - 1)]


class PromoDefinition(RequestBody):
    code: RawCode
    kind: Literal["percent", "fixed"]
    value: Annotated[int, Meta(ge=1, le=10**15, description="percent: 1..100; fixed: minor units of currency")]
    # Required for a fixed code (the currency of value), refused on a percent code.
    currency: (
        Annotated[
            Currency,
            Meta(description="fixed codes only, and required for them: the currency of value (ISO 4217, e.g. VND)"),
        ]
        | None
    ) = None
    event_id: uuid.UUID | None = None
    tier_ids: Annotated[list[uuid.UUID], Meta(max_length=MAX_TIER_IDS)] | None = None
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    min_subtotal: Annotated[int, Meta(ge=0, le=10**15, description="Of the lines in scope")] = 0
    max_uses: Limit | None = None
    max_uses_per_customer: Limit | None = None
    active: bool = True


class ApplyPromo(RequestBody):
    code: RawCode


class PromoCode(msgspec.Struct, frozen=True):
    """One ``promo_codes`` row: the definition plus how often it has been used (``used``
    counts the checkouts holding a use now; a released order gives its use back)."""

    code: str
    kind: str  # "percent" | "fixed"
    value: int
    currency: str | None  # a fixed code's (value is in its minor units); None for a percent code
    event_id: str | None
    tier_ids: tuple[str, ...] | None  # sorted
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    min_subtotal: int
    max_uses: int | None
    max_uses_per_customer: int | None
    used: int
    active: bool


class PromoQuote(msgspec.Struct, frozen=True):
    """What a code takes off one checkout: the total and its part per tier id."""

    code: str
    discount: int
    line_discounts: dict[str, int]
