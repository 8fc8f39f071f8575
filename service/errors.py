"""Domain errors, and their one mapping to RFC 9457 problems with a stable ``code``.

Domain code raises these and knows nothing of HTTP; ``service/http/problems.py`` turns
them into ``application/problem+json`` responses.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request refused"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        self.headers = headers or {}


class ValidationFailed(DomainError):
    code, status, title = "validation-error", 422, "The request is not valid"


class TierNotFound(DomainError):
    code, status, title = "tier-not-found", 404, "No such ticket tier"


class NotFound(DomainError):
    code, status, title = "not-found", 404, "Not found"


class SoldOut(DomainError):
    code, status, title = "sold-out", 409, "Not enough seats left"


class LimitExceeded(DomainError):
    code, status, title = "limit-exceeded", 409, "Limit exceeded"


class SaleNotOpen(DomainError):
    code, status, title = "sale-not-open", 409, "The sale has not started"


class SaleClosed(DomainError):
    code, status, title = "sale-closed", 409, "The sale has ended"


class CurrencyMismatch(DomainError):
    code, status, title = "currency-mismatch", 409, "A cart holds one currency only"


class CheckoutInProgress(DomainError):
    code, status, title = "checkout-in-progress", 409, "The cart is being checked out"


class CartEmpty(DomainError):
    code, status, title = "cart-empty", 409, "The cart is empty"


class ReservationExpired(DomainError):
    code, status, title = "reservation-expired", 409, "The cart's reservation has expired"


class Conflict(DomainError):
    code, status, title = "conflict", 409, "The request conflicts with the current state"


class SeatsGone(DomainError):
    code, status, title = "seats-gone", 409, "The order's seats have been sold to others"


class InvalidPromo(DomainError):
    code, status, title = "invalid-promo", 422, "The promo code does not apply"


class PromoExhausted(DomainError):
    code, status, title = "promo-exhausted", 409, "The promo code has been used up"


class InvalidCartToken(DomainError):
    code, status, title = "invalid-cart-token", 401, "The cart token is not valid"


class InvalidUserToken(DomainError):
    code, status, title = "invalid-token", 401, "The bearer token is not valid"


class Unauthorized(DomainError):
    code, status, title = "unauthorized", 401, "Credentials are missing or wrong"


class RateLimited(DomainError):
    code, status, title = "rate-limited", 429, "Too many requests"


class Unavailable(DomainError):
    code, status, title = "unavailable", 503, "A backing service is unavailable; try again"


class CheckoutPending(DomainError):
    """A checkout whose commit's outcome is not known yet: its seats stay held for it, and
    the same checkout retried (or the worker) finds out. Sent with Retry-After."""

    code, status, title = "checkout-pending", 503, "The checkout's outcome is being resolved; retry it"
