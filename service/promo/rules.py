"""Promo arithmetic and checks: pure functions of a code, cart lines and a clock.

No I/O here. A code applies to the lines in its scope only; its discount is rounded in the
buyer's favour to the minor unit (percent: the ceiling of subtotal * value / 100), never
exceeds the in-scope subtotal, and is spread over those lines so the parts add up exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from service.cart.dto import CartItem
from service.errors import InvalidPromo, ValidationFailed
from service.promo.dto import PromoCode, PromoDefinition

CODE_PATTERN = re.compile(r"[A-Z0-9_-]{1,64}")

REASONS = {
    "not-found": "No such promo code",
    "inactive": "This promo code is not active",
    "not-started": "This promo code is not valid yet",
    "expired": "This promo code has expired",
    "exhausted": "This promo code has been used up",
    "not-applicable": "This promo code does not apply to any ticket in the cart",
    "currency": "This promo code is an amount in another currency than the cart's",
    "below-minimum": "The tickets this promo code applies to do not reach its minimum amount",
}


def normalize_code(raw: str) -> str | None:
    """The stored form of a code (trimmed, upper-case), or None if no code can look like it."""
    code = raw.strip()
    if not code.isascii():  # str.upper() maps some non-ASCII letters onto ASCII ones
        return None
    code = code.upper()
    return code if CODE_PATTERN.fullmatch(code) else None


def invalid(reason: str, **extra: Any) -> InvalidPromo:  # extra: as DomainError takes it
    return InvalidPromo(REASONS[reason], reason=reason, **extra)


def check_definition(body: PromoDefinition) -> PromoCode:
    """A valid definition as a PromoCode (used 0), or ValidationFailed naming the field.

    Text without NUL and instants with a time zone, in range, are checked while decoding
    (``service.validation``); what needs several fields or the normalised code, here."""
    code = normalize_code(body.code)
    if code is None:
        raise ValidationFailed(
            "code must be 1 to 64 characters of A-Z, 0-9, '_' or '-' (case-insensitive, surrounding spaces ignored)",
            field="code",
        )
    if body.kind == "percent" and not 1 <= body.value <= 100:
        raise ValidationFailed("a percent code's value must be between 1 and 100", field="value")
    if body.kind == "fixed" and body.currency is None:
        raise ValidationFailed("a fixed code needs the currency of its value (ISO 4217, e.g. VND)", field="currency")
    if body.kind == "percent" and body.currency is not None:
        raise ValidationFailed("a percent code has no currency; leave currency out", field="currency")
    if body.starts_at and body.ends_at and body.starts_at >= body.ends_at:
        raise ValidationFailed("starts_at must be before ends_at", field="ends_at")
    if body.tier_ids is not None and not body.tier_ids:
        raise ValidationFailed("tier_ids must name at least one tier; omit it to cover every tier", field="tier_ids")
    return PromoCode(
        code=code,
        kind=body.kind,
        value=body.value,
        currency=body.currency,
        event_id=str(body.event_id) if body.event_id else None,
        tier_ids=tuple(sorted({str(t) for t in body.tier_ids})) if body.tier_ids is not None else None,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        min_subtotal=body.min_subtotal,
        max_uses=body.max_uses,
        max_uses_per_customer=body.max_uses_per_customer,
        used=0,
        active=body.active,
    )


def in_scope(promo: PromoCode, item: CartItem) -> bool:
    """A line is in scope when it matches the code's event (if any) and its tiers (if any)."""
    return (promo.event_id is None or item.event_id == promo.event_id) and (
        promo.tier_ids is None or item.tier_id in promo.tier_ids
    )


def scoped_subtotal(promo: PromoCode, items: Sequence[CartItem]) -> int:
    return sum(item.line_total for item in items if in_scope(promo, item))


def check_applies(promo: PromoCode | None, items: Sequence[CartItem], now: dt.datetime) -> PromoCode:
    """The code if it applies to these lines now, else InvalidPromo with the first reason.

    Use limits are checked apart (``uses_refusal``): how they are refused depends on when.
    """
    if promo is None:
        raise invalid("not-found")
    if not promo.active:
        raise invalid("inactive")
    if promo.starts_at is not None and now < promo.starts_at:
        raise invalid("not-started", starts_at=promo.starts_at.isoformat())
    if promo.ends_at is not None and now >= promo.ends_at:
        raise invalid("expired")
    if not any(in_scope(promo, item) for item in items):
        raise invalid("not-applicable")
    if promo.currency is not None:  # a fixed code: its value means nothing in another currency
        other = sorted({item.currency for item in items if in_scope(promo, item)} - {promo.currency})
        if other:
            raise invalid("currency", currency=promo.currency, cart_currency=other[0])
    subtotal = scoped_subtotal(promo, items)
    if subtotal < promo.min_subtotal:
        raise invalid("below-minimum", min_subtotal=promo.min_subtotal, subtotal=subtotal)
    return promo


def uses_refusal(promo: PromoCode, customer_uses: int | None) -> str | None:
    """ "total" or "customer" when a use limit is reached (customer_uses None: not known)."""
    if promo.max_uses is not None and promo.used >= promo.max_uses:
        return "total"
    limit = promo.max_uses_per_customer
    if limit is not None and customer_uses is not None and customer_uses >= limit:
        return "customer"
    return None


def line_discounts(promo: PromoCode, items: Sequence[CartItem]) -> dict[str, int]:
    """The discount of each in-scope line (by tier id), adding up to the code's discount.

    Assumes the code applies (``check_applies``); lines out of scope are absent.
    """
    weights = {item.tier_id: item.line_total for item in items if in_scope(promo, item) and item.line_total > 0}
    subtotal = sum(weights.values())
    if subtotal == 0:
        return {}
    # A percentage's ceiling: rounded in the buyer's favour.
    amount = -(-subtotal * promo.value // 100) if promo.kind == "percent" else promo.value
    return spread(min(amount, subtotal), weights)


def spread(amount: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split ``amount`` (<= the sum of weights) in proportion, by largest remainder.

    Each share is its exact proportion rounded down or up, so none passes its own weight;
    ties go to the smaller key, so the split is the same every time.
    """
    total = sum(weights.values())
    shares = {key: amount * weight // total for key, weight in weights.items()}
    left = amount - sum(shares.values())
    by_remainder = sorted(weights, key=lambda key: (-(amount * weights[key] % total), key))
    for key in by_remainder[:left]:
        shares[key] += 1
    return shares
