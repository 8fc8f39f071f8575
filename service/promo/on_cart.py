"""A buyer's promo code on their cart: applying one (with its attempt limits) and removing it.

The cart keeps its previous code when a new one does not apply. Every attempt counts
against the per-cart and per-address limits (attempts.py), the refused ones too, so codes
cannot be guessed quickly; the limit's state goes back in the answer's headers.
"""

from __future__ import annotations

import asyncio
import logging

from service.auth import CartRef
from service.cart.dto import CartView
from service.cart.service import CartService
from service.clock import now_ms, utcnow
from service.errors import CheckoutInProgress, InvalidPromo, RateLimited
from service.promo.attempts import AttemptLimit, PromoAttempts
from service.promo.dto import PromoCode
from service.promo.rules import check_applies, invalid, normalize_code, uses_refusal
from service.promo.service import PromoService, customer_key

log = logging.getLogger("ticket_cart.promo")


class CartPromos:
    """Promo codes on carts, on the promo definitions, the carts and the attempt limits."""

    def __init__(self, promos: PromoService, carts: CartService, attempts: PromoAttempts) -> None:
        self.promos = promos
        self.carts = carts
        self.attempts = attempts

    async def apply(self, cart: CartRef | None, raw_code: str, client: str | None) -> tuple[CartView, AttemptLimit]:
        """Check the code against the cart and name it there. A caller without a cart is
        refused (not-applicable) without one being made. ``client``: the caller's address
        for the per-address limit, None for a trusted backend."""
        cart_id = cart.cart_id if cart else None
        code = normalize_code(raw_code)
        try:
            limit = await self.attempts.spend(cart_id, client, now_ms())
        except RateLimited:
            _log_attempt(code, "rate-limited", cart_id, client)
            raise
        try:
            # The cart from Redis and the code from PostgreSQL at once (their answers are
            # judged in the order they were asked in before: the cart's first).
            user_key = customer_key(cart.user_id, "") if cart and cart.user_id else None
            view, found = await self._cart_and_code(cart, code, user_key)
            if view is not None and view.status == "checkout":
                raise CheckoutInProgress("The cart is being checked out; the promo code cannot change now")
            if code is None:
                raise invalid("not-found")
            promo, customer_uses = found
            check_applies(promo, view.items if view else [], utcnow())
            assert promo is not None and cart is not None  # a code that applies has lines
            if uses_refusal(promo, customer_uses if user_key else None):
                raise invalid("exhausted")
            view = await self.carts.set_promo(cart, code)
        except InvalidPromo as exc:
            _log_attempt(code, exc.extra.get("reason", "invalid"), cart_id, client)
            exc.headers.update(limit.headers())  # a refused attempt spent from the limit too
            raise
        _log_attempt(code, "applied", cart_id, client)
        return view, limit

    async def _cart_and_code(
        self, cart: CartRef | None, code: str | None, user_key: str | None
    ) -> tuple[CartView | None, tuple[PromoCode | None, int]]:
        """The settled cart (None without one) and the code with ``user_key``'s uses of it,
        fresh from PostgreSQL (an admin's change shows here at once, and a buyer learns of
        their own use limit before checkout), asked at once; an error of the cart's first."""

        async def cart_view() -> CartView | None:
            return await self.carts.settled_view(cart) if cart else None

        async def promo() -> tuple[PromoCode | None, int]:
            if code is None:
                return None, 0
            return await self.promos.for_customer(code, user_key)

        view, found = await asyncio.gather(cart_view(), promo(), return_exceptions=True)
        if isinstance(view, BaseException):
            raise view
        if isinstance(found, BaseException):
            raise found
        return view, found

    async def remove(self, cart: CartRef) -> CartView:
        view = await self.carts.settled_view(cart)
        if view.status == "checkout":
            raise CheckoutInProgress("The cart is being checked out; the promo code cannot change now")
        if view.promo_code is None:
            return view
        return await self.carts.set_promo(cart, None)


def _log_attempt(code: str | None, result: str, cart_id: str | None, client: str | None) -> None:
    # Only a well-formed code is logged: what a buyer typed may be anything, their e-mail too.
    log.info(
        "promo attempt code=%s result=%s cart=%s client=%s",
        code or "(malformed)",
        result,
        cart_id,
        client or "(trusted service)",
    )
