"""HTTP handler of the cart merge: a signed-in user takes over the guest cart named by
the cart token. Parse, call the domain, map the result."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency

from service.auth import CartRef, user_cart_id
from service.cart.merge import CartMerge, MergedCartView
from service.errors import (
    CheckoutInProgress,
    CheckoutPending,
    CurrencyMismatch,
    LimitExceeded,
    Unauthorized,
    ValidationFailed,
)
from service.http.identity import CART_TOKEN_COOKIE, guest_cart_id, signed_in_user
from service.http.openapi import SIGNED_IN_WITH_GUEST_CART, problems


@post(
    "/api/cart/merge",
    operation_id="mergeCart",
    summary="Merge the guest cart named by the cart token into the signed-in user's cart",
    description="Needs both a signed-in user (bearer; without one: 401 unauthorized) and the guest cart's "
    "token, in the X-Cart-Token header or the cart_token cookie (the header wins when both are sent; "
    "without either: 422 validation-error, field `X-Cart-Token`). Lines add up, each capped at what the "
    "tier allows (`capped` lists the lines cut); a part being checked out is left where it is "
    "(`not_merged`). Refused before anything changes when the carts hold different currencies (409 "
    "currency-mismatch) or too many events together (409 limit-exceeded). Once the guest cart is empty the "
    "answer deletes the cart_token cookie.",
    tags=["cart"],
    status_code=200,
    security=SIGNED_IN_WITH_GUEST_CART,
    responses=problems(CurrencyMismatch, LimitExceeded, CheckoutInProgress, ValidationFailed, CheckoutPending),
)
async def merge_cart(
    request: Request[Any, Any, Any],
    merges: NamedDependency[CartMerge],
) -> Response[MergedCartView]:
    user_id = signed_in_user(request.scope)
    if user_id is None:
        raise Unauthorized("Sign in (Authorization: Bearer <token>) to merge a guest cart")
    guest_cart = guest_cart_id(request.scope)
    if guest_cart is None:
        raise ValidationFailed(
            "Name the guest cart with its X-Cart-Token header or cart_token cookie", field="X-Cart-Token"
        )
    view, guest_gone = await merges.merge(CartRef(cart_id=user_cart_id(user_id), user_id=user_id), guest_cart)
    response = Response(view)
    if guest_gone:  # the guest token names an empty cart now: let the browser forget it
        response.delete_cookie(CART_TOKEN_COOKIE, path="/")
    return response


ROUTES = [merge_cart]
