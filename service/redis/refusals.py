"""What each refusal a Lua script answers means to the buyer: one table, one place.

The scripts refuse with a result code (``replies.py`` lists each script's); the cart, the
merge and the checkout turn a refusal into its domain error here, so the same code always
reads the same to a caller, whichever path met it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from service.errors import (
    CheckoutInProgress,
    DomainError,
    LimitExceeded,
    ReservationExpired,
    SaleClosed,
    SaleNotOpen,
    SoldOut,
)


def _limit(reply: Any) -> DomainError:
    if reply.what == "lines":
        return LimitExceeded(f"A cart holds at most {reply.limit} lines per event", limit=reply.limit, what="lines")
    return LimitExceeded(f"At most {reply.limit} tickets of this tier per order", limit=reply.limit, what="per-order")


def _checkout_in_progress(reply: Any) -> DomainError:
    return CheckoutInProgress("The cart is being checked out; try again in a moment", headers={"Retry-After": "1"})


REFUSALS: dict[str, Callable[[Any], DomainError]] = {
    "sold-out": lambda reply: SoldOut(f"Only {reply.available} seats are left", available=reply.available),
    "limit-exceeded": _limit,
    "sale-not-open": lambda reply: SaleNotOpen("The sale of this tier has not started yet"),
    "sale-closed": lambda reply: SaleClosed("The sale of this tier has ended"),
    "inactive": lambda reply: SaleClosed("This tier is not on sale", reason="inactive"),
    "checkout-in-progress": _checkout_in_progress,
    "guest-checkout": _checkout_in_progress,
    "user-checkout": _checkout_in_progress,
    "expired": lambda reply: ReservationExpired("The hold on some of the cart's seats has expired; add them again"),
}


def refusal(reply: Any) -> DomainError:
    """The domain error of a script's refusal (``reply.result`` is one of REFUSALS)."""
    make = REFUSALS.get(reply.result)
    if make is None:
        raise RuntimeError(f"a script answered {reply.result!r}, which is not a refusal")
    return make(reply)


def checkout_in_progress() -> DomainError:
    return _checkout_in_progress(None)
