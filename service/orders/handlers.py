"""HTTP handlers of orders: check out, read one order, list a user's orders.

Parse (msgspec, e-mail validation), call the domain, map the result. Nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from service.errors import (
    CartEmpty,
    CheckoutInProgress,
    CheckoutPending,
    CurrencyMismatch,
    InvalidPromo,
    NotFound,
    PromoExhausted,
    ReservationExpired,
    SoldOut,
    Unauthorized,
    ValidationFailed,
)
from service.http.bodies import strict_body
from service.http.identity import existing_cart, signed_in_user
from service.http.openapi import CART_CALLER, OWNER_OR_ORDER_TOKEN, SIGNED_IN, problems
from service.http.params import PageCursor, idempotency_key as idempotency_key_of
from service.orders.checkout import Checkouts
from service.orders.dto import CheckoutRequest, OrderPage, OrderView
from service.orders.reads import OrderReads

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="The same key on the same cart answers the same order again, for as long as it lives "
        "(1 to 200 visible ASCII characters, spaces inside allowed)",
    ),
]
OrderToken = Annotated[
    str | None,
    HeaderParameter(name="X-Order-Token", description="A guest's order access token, from the checkout's answer"),
]


def _email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed(f"email is not valid: {exc}", field="email") from None


@post(
    "/api/orders",
    operation_id="createOrder",
    summary="Check out the cart: the order, its payment code and tickets",
    description="Checks out the signed-in user's cart (bearer) or the guest cart named by X-Cart-Token (or "
    "the cart_token cookie); a bearer token wins when both are sent. Without either there is no cart: 409 "
    "cart-empty. 201 with the new order: `payment` holds the bank transfer's code and due time (null when "
    "there is nothing to pay: the order is `paid` at once) and a guest gets `access_token`, the key to "
    "GET /api/orders/{order_id} (X-Order-Token), only here. The same checkout again (the same Idempotency-Key, "
    "or the same cart once emptied by it) answers that order again, 200. The cart's promo code is checked "
    "again (422 invalid-promo, 409 promo-exhausted). 503 checkout-pending with Retry-After: the outcome of an "
    "earlier try is being found out and the seats stay held; retry the same checkout.",
    tags=["orders"],
    security=CART_CALLER,
    status_code=201,
    responses={
        200: ResponseSpec(
            OrderView, description="A retried checkout: the order it made before", generate_examples=False
        ),
        **problems(
            CartEmpty,
            ReservationExpired,
            SoldOut,
            CurrencyMismatch,
            PromoExhausted,
            CheckoutInProgress,
            InvalidPromo,
            ValidationFailed,
            CheckoutPending,
        ),
    },
    before_request=strict_body,
)
async def create_order(
    request: Request[Any, Any, Any],
    data: JSONBody[CheckoutRequest],
    checkouts: NamedDependency[Checkouts],
    idempotency_key: IdempotencyKey = None,
) -> Response[OrderView]:
    email = _email(data.email)
    key = idempotency_key_of(idempotency_key)
    cart = existing_cart(request.scope)
    if cart is None:
        raise CartEmpty("There is no cart to check out")
    name = data.name.strip() if data.name and data.name.strip() else None
    result = await checkouts.checkout(cart, email=email, name=name, idempotency_key=key)
    return Response(result.order, status_code=201 if result.created else 200)


@get(
    "/api/orders",
    operation_id="listOrders",
    summary="The signed-in user's orders, newest first",
    description='A page of the signed-in user\'s orders, newest first: `{"orders": [...], "next_cursor": '
    "...}`. `limit` orders at most (1 to 100, default 20). `next_cursor` is null on the last page; else pass "
    "it as `cursor` to get the next, older page. A cursor is opaque: only one this API gave out is taken "
    "(anything else: 422 validation-error, field `cursor`).",
    tags=["orders"],
    security=SIGNED_IN,
    responses=problems(ValidationFailed),
)
async def list_orders(
    request: Request[Any, Any, Any],
    orders: NamedDependency[OrderReads],
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="The most orders on the page")] = 20,
    cursor: PageCursor = None,
) -> OrderPage:
    user_id = signed_in_user(request.scope)
    if user_id is None:
        raise Unauthorized("Sign in (Authorization: Bearer <token>) to list your orders")
    return await orders.list_for_user(user_id, limit=limit, cursor=cursor)


@get(
    "/api/orders/{order_id:str}",
    operation_id="getOrder",
    summary="One order, for its owner or with its access token",
    description="For the signed-in user who made it (bearer), or for anyone sending its guest access token "
    "(the checkout's `access_token`) in X-Order-Token. Anyone else gets 404 not-found, as for an order that "
    "does not exist (a malformed id too): nothing tells them it exists.",
    tags=["orders"],
    security=OWNER_OR_ORDER_TOKEN,
    responses=problems(NotFound),
)
async def get_order(
    request: Request[Any, Any, Any],
    order_id: FromPath[str],
    orders: NamedDependency[OrderReads],
    order_token: OrderToken = None,
) -> OrderView:
    return await orders.get(order_id, user_id=signed_in_user(request.scope), access_token=order_token)


ROUTES = [create_order, list_orders, get_order]
