"""Cart totals. Pure functions: lines in, amounts out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from service.cart.dto import CartItem

# (items, promo_code) -> discount in minor units; installed by the promo area.
DiscountRule = Callable[[Sequence[CartItem], str], Awaitable[int]]


async def no_discount(items: Sequence[CartItem], code: str) -> int:
    return 0


async def totals(items: Sequence[CartItem], promo_code: str | None, rule: DiscountRule) -> tuple[int, int, int]:
    """(subtotal, discount, total); the discount never exceeds the subtotal."""
    subtotal = sum(item.line_total for item in items)
    discount = await rule(items, promo_code) if promo_code else 0
    discount = max(0, min(discount, subtotal))
    return subtotal, discount, subtotal - discount
