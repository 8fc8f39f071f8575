"""The cart's meta hash (`{c:<cart>}:meta`): its fields and how to read them.

Cart-wide facts live there, in the cart's own slot: the events where it has a part
(``ev:<event>``), its currency, promo code and owner, and a few notes other areas keep
about the cart (below). Written by cart_touch.lua before any part, so its event list is
always a superset of the parts.
"""

from __future__ import annotations

EVENT_FIELD = "ev:"  # ev:<event>: the cart may have a part in that event
CURRENCY_FIELD = "cur"  # the cart's one currency (cart_touch.lua keeps the first: HSETNX)
PROMO_FIELD = "promo"  # the promo code applied to the cart
OWNER_FIELD = "owner"  # a signed-in user's id
# Notes the checkout keeps (service/orders): history of the cart, not its contents, so
# emptying the cart keeps them.
LAST_ORDER_FIELD = "last_order"  # "<order id> <ms>" of the last order a checkout answered
UNANSWERED_FIELD = "unanswered"  # an order committed for this cart that no answer carried
# A signed-in user's meta knows their cart saved in PostgreSQL (restored, or nothing to
# restore): without it, the cart may have been lost with Redis (service/cart/saved.py).
SAVED_FIELD = "pg"
HISTORY_FIELDS = frozenset({LAST_ORDER_FIELD.encode(), UNANSWERED_FIELD.encode(), SAVED_FIELD.encode()})


_EVENT_PREFIX = EVENT_FIELD.encode()
_EVENT_PREFIX_LENGTH = len(_EVENT_PREFIX)


def meta_text(meta: dict[bytes, bytes], field: str) -> str | None:
    """A text field of the meta as HGETALL answered it; None when absent or empty."""
    value = meta.get(field.encode())
    return value.decode() if value else None


def events_of(meta: dict[bytes, bytes]) -> list[str]:
    """Events the meta names (a superset of the parts: readers drop empty ones)."""
    # A list, not a generator, and the prefix encoded once: every cart change reads it.
    return sorted([k[_EVENT_PREFIX_LENGTH:].decode() for k in meta if k.startswith(_EVENT_PREFIX)])
