"""Bodies of the tier endpoints (availability, admin catalogue sync)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.validation import Currency, Instant, RequestBody, Text


class TierDefinition(RequestBody):
    event_id: uuid.UUID
    name: Annotated[Text, Meta(min_length=1, max_length=200)]
    price: Annotated[int, Meta(ge=0, le=10**12, description="Minor units of the currency")]
    currency: Currency
    quantity_total: Annotated[int, Meta(ge=0, le=10_000_000)]
    max_per_order: Annotated[int, Meta(ge=1, le=10_000)]
    sales_start: Instant | None = None
    sales_end: Instant | None = None
    active: bool = True


SaleStatus = Literal["on-sale", "sold-out", "not-open", "closed", "inactive"]


class Availability(msgspec.Struct):
    tier_id: str
    event_id: str
    available: int
    status: str  # "on-sale", "sold-out", "not-open", "closed", "inactive"


class Inventory(msgspec.Struct):
    total: int
    sold: int
    held: int
    available: int
    sold_db: int  # quantity_sold in PostgreSQL (Redis `sold` is its cache)


class TierView(msgspec.Struct):
    id: str
    event_id: str
    name: str
    price: int
    currency: str
    quantity_total: int
    quantity_sold: int
    max_per_order: int
    sales_start: dt.datetime | None
    sales_end: dt.datetime | None
    active: bool
    version: int
    sold_version: int
    inventory: Inventory | None = None


class CatalogueTier(msgspec.Struct):
    """A tier as a buyer sees it: what it costs, how many one order may hold, whether it is on
    sale and how many seats are left now."""

    id: str
    name: str
    price: Annotated[int, Meta(description="Minor units of the currency")]
    currency: str
    max_per_order: Annotated[
        int, Meta(description="The most seats of this tier one cart may hold (the tier's limit, or the service's)")
    ]
    sales_start: dt.datetime | None
    sales_end: dt.datetime | None
    status: SaleStatus
    available: Annotated[int, Meta(description="Seats neither sold nor held, at the time of the answer")]


class EventTiers(msgspec.Struct):
    """The public catalogue of one event: its active tiers, cheapest first."""

    event_id: str
    tiers: list[CatalogueTier]
