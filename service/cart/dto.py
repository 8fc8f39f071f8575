"""Request and response bodies of the cart API (msgspec Structs, validated at the edge)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import msgspec
from msgspec import Meta

# A global cap; each tier's own max_per_order applies on top (checked in reserve.lua).
MAX_QUANTITY = 10_000
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY, description="Seats, at least 1")]
QuantityOrZero = Annotated[int, Meta(ge=0, le=MAX_QUANTITY, description="Seats; 0 removes the line")]


class AddItem(msgspec.Struct, forbid_unknown_fields=True):
    tier_id: uuid.UUID
    quantity: Quantity


class SetQuantity(msgspec.Struct, forbid_unknown_fields=True):
    quantity: QuantityOrZero


class CartItem(msgspec.Struct):
    tier_id: str
    event_id: str
    name: str
    quantity: int
    unit_price: int
    line_total: int
    currency: str
    max_per_order: int


class RestoredLine(msgspec.Struct):
    tier_id: str
    wanted: int  # the quantity the saved cart had
    held: int  # what is held again now
    reason: str | None = None  # when held < wanted: the problem code that refused the rest


class CartRestore(msgspec.Struct):
    """A signed-in user's cart was lost with Redis: its saved lines, held again where the
    seats were still free (docs/operations.md, "What survives a Redis restart")."""

    lines: list[RestoredLine]


class CartView(msgspec.Struct, omit_defaults=True, kw_only=True):
    items: list[CartItem]
    item_count: int
    currency: str | None
    subtotal: int
    discount: int
    total: int
    promo_code: str | None
    expires_at: dt.datetime | None
    status: str  # "empty", "open" or "checkout"
    # Only in the answer that restored a signed-in user's cart lost with Redis.
    restored: CartRestore | None = None
