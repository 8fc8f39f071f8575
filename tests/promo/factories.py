"""Cart lines and promo codes for the pure tests."""

from __future__ import annotations

from service.cart.dto import CartItem
from service.promo.dto import PromoCode

EVENT_A = "00000000-0000-4000-8000-00000000000a"
EVENT_B = "00000000-0000-4000-8000-00000000000b"


def line(tier: str, price: int, quantity: int = 1, event: str = EVENT_A, currency: str = "VND") -> CartItem:
    return CartItem(
        tier_id=tier,
        event_id=event,
        name=f"tier {tier}",
        quantity=quantity,
        unit_price=price,
        line_total=price * quantity,
        currency=currency,
        max_per_order=10,
    )


def promo(kind: str = "percent", value: int = 10, **fields) -> PromoCode:
    """A code; a fixed one is in VND (as ``line`` is) unless ``currency`` says otherwise."""
    defaults = dict(
        code="SAVE",
        kind=kind,
        value=value,
        currency="VND" if kind == "fixed" else None,
        event_id=None,
        tier_ids=None,
        starts_at=None,
        ends_at=None,
        min_subtotal=0,
        max_uses=None,
        max_uses_per_customer=None,
        used=0,
        active=True,
    )
    return PromoCode(**(defaults | fields))
