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

from service.errors import CartEmpty, Unauthorized, ValidationFailed
from service.http.identity import existing_cart, signed_in_user
from service.http.openapi import problems
from service.http.params import idempotency_key as idempotency_key_of
from service.orders.checkout import Checkouts
from service.orders.dto import CheckoutRequest, OrderPage, OrderView
from service.orders.reads import OrderReads

CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"  # base64url without padding, as OrderPage.next_cursor gives it

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(name="Idempotency-Key", description="The same key answers the same order again (retries)"),
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
    summary="Check out the cart: the order, its payment code and tickets",
    tags=["orders"],
    status_code=201,
    responses={
        200: ResponseSpec(
            OrderView, description="A retried checkout: the order it made before", generate_examples=False
        ),
        **problems(401, 409),
    },
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
    summary="The signed-in user's orders, newest first",
    tags=["orders"],
    security=[{"bearer": []}],
    responses=problems(401),
)
async def list_orders(
    request: Request[Any, Any, Any],
    orders: NamedDependency[OrderReads],
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None,
        QueryParameter(max_length=200, pattern=CURSOR_PATTERN, description="next_cursor of the previous page"),
    ] = None,
) -> OrderPage:
    user_id = signed_in_user(request.scope)
    if user_id is None:
        raise Unauthorized("Sign in (Authorization: Bearer <token>) to list your orders")
    return await orders.list_for_user(user_id, limit=limit, cursor=cursor)


@get(
    "/api/orders/{order_id:str}",
    summary="One order, for its owner or with its access token",
    tags=["orders"],
    responses=problems(401, 404),
)
async def get_order(
    request: Request[Any, Any, Any],
    order_id: FromPath[str],
    orders: NamedDependency[OrderReads],
    order_token: OrderToken = None,
) -> OrderView:
    return await orders.get(order_id, user_id=signed_in_user(request.scope), access_token=order_token)


ROUTES = [create_order, list_orders, get_order]
