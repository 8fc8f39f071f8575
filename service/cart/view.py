"""The cart as the API shows it, built from its parts in Redis and its meta: lines priced
as Redis has the tiers, totals with the promo code's discount, the earliest expiry."""

from __future__ import annotations

import datetime as dt

from service.cart.dto import CartItem, CartView
from service.cart.meta import CURRENCY_FIELD, PROMO_FIELD, meta_text
from service.cart.pricing import DiscountRule, totals
from service.redis.replies import PartLine, ViewReply


async def cart_view(parts: dict[str, ViewReply], meta: dict[bytes, bytes], discount_rule: DiscountRule) -> CartView:
    """The cart of these parts (event -> part) and this meta; empty parts are left out."""
    items: list[CartItem] = []
    expiries: list[int] = []
    status = "empty"
    for event_id in sorted(parts):
        part = parts[event_id]
        if not part.lines:
            continue
        expiries.append(part.expiry_ms)
        status = "checkout" if part.state == "checkout" or status == "checkout" else "open"
        for tier_id in sorted(part.lines):
            items.append(cart_item(event_id, tier_id, part.lines[tier_id]))
    promo_code = meta_text(meta, PROMO_FIELD)
    subtotal, discount, total = await totals(items, promo_code, discount_rule)
    currencies = {item.currency for item in items}
    return CartView(
        items=items,
        item_count=sum(item.quantity for item in items),
        currency=currencies.pop() if len(currencies) == 1 else (meta_text(meta, CURRENCY_FIELD) if items else None),
        subtotal=subtotal,
        discount=discount,
        total=total,
        promo_code=promo_code,
        expires_at=dt.datetime.fromtimestamp(min(expiries) / 1000, dt.UTC) if expiries else None,
        status=status,
    )


def cart_item(event_id: str, tier_id: str, line: PartLine) -> CartItem:
    return CartItem(
        tier_id=tier_id,
        event_id=event_id,
        name=line.name,
        quantity=line.quantity,
        unit_price=line.price,
        line_total=line.price * line.quantity,
        currency=line.currency,
        max_per_order=line.max_per_order,
    )
