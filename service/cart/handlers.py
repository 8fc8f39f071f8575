"""HTTP handlers of the cart: parse, call the domain, map the result. Nothing else.

Each operation is written once (``_add``, ``_set``, ...) and reached two ways: through
its Litestar handler (the documented contract, and every request the fast lane passes
on) and through the fast lane (``fastlane.fast`` of the operation, in the route's ``opt``),
which parses the body strictly and hands anything it does not take as it is to the handler.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.types import Scope

from service.cart.dto import AddItem, CartView, SetQuantity
from service.errors import (
    CheckoutInProgress,
    CheckoutPending,
    CurrencyMismatch,
    LimitExceeded,
    SaleClosed,
    SaleNotOpen,
    SoldOut,
    TierNotFound,
    ValidationFailed,
)
from service.http.bodies import strict_body
from service.http.fastlane import FAST_LANE, Answer, fast
from service.http.identity import cart_token_headers, existing_cart, resolve_cart
from service.http.openapi import CART_CALLER, problems
from service.http.params import request_id_for_retry, uuid_param
from service.wiring import services_of

EMPTY_CART = CartView(
    items=[],
    item_count=0,
    currency=None,
    subtotal=0,
    discount=0,
    total=0,
    promo_code=None,
    expires_at=None,
    status="empty",
)

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        description="Makes a retried add change nothing: the same key on the same cart adds once "
        "(1 to 200 visible ASCII characters, spaces inside allowed)",
    ),
]

NEW_CART_TOKEN = [
    ResponseHeader(
        name="X-Cart-Token",
        documentation_only=True,
        description="A new guest cart's token, sent once (also the cart_token cookie): send it back as the "
        "X-Cart-Token header (or the cookie) to name the cart",
    )
]
# What a change of the cart's lines can be refused for (reserve.lua, then the cart's rules).
CHANGE_REFUSALS = (
    TierNotFound,
    SoldOut,
    LimitExceeded,
    SaleNotOpen,
    SaleClosed,
    CurrencyMismatch,
    CheckoutInProgress,
    ValidationFailed,
    CheckoutPending,
)
WHO = (
    "The cart is the signed-in user's (bearer) or the guest cart named by X-Cart-Token (or the cart_token "
    "cookie); a bearer token wins when both are sent. "
)

# Strict: a body Litestar's lenient parsing would still take ("quantity": "2") goes to the handler.
_ADD_ITEM = msgspec.json.Decoder(AddItem)
_SET_QUANTITY = msgspec.json.Decoder(SetQuantity)


def _response(answer: Answer) -> Response[Any]:
    return Response(answer.body, status_code=answer.status, headers=answer.headers or None)


# -- the operations -------------------------------------------------------------------------


async def _show(scope: Scope) -> Answer:
    cart = existing_cart(scope)
    return Answer(200, EMPTY_CART if cart is None else await services_of(scope).carts.show(cart))


async def _add(scope: Scope, data: AddItem, idempotency_key: str | None) -> Answer:
    s = services_of(scope)
    cart, new_token = resolve_cart(scope, s.cart_tokens, s.user_tokens, create=True)
    assert cart is not None
    view = await s.carts.change(cart, str(data.tier_id), data.quantity, "add", request_id_for_retry(idempotency_key))
    return Answer(201 if new_token else 200, view, cart_token_headers(new_token, s.settings.is_production, scope))


async def _set(scope: Scope, tier_id: str, data: SetQuantity) -> Answer:
    s = services_of(scope)
    tier = uuid_param(tier_id, "tier_id")
    cart, new_token = resolve_cart(scope, s.cart_tokens, s.user_tokens, create=data.quantity > 0)
    if cart is None:
        return Answer(200, EMPTY_CART)
    view = await s.carts.change(cart, tier, data.quantity, "set", request_id_for_retry(None))
    return Answer(200, view, cart_token_headers(new_token, s.settings.is_production, scope))


async def _remove(scope: Scope, tier_id: str) -> Answer:
    tier = uuid_param(tier_id, "tier_id")
    cart = existing_cart(scope)
    return Answer(200, EMPTY_CART if cart is None else await services_of(scope).carts.remove(cart, tier))


async def _clear(scope: Scope) -> Answer:
    cart = existing_cart(scope)
    return Answer(200, EMPTY_CART if cart is None else await services_of(scope).carts.clear(cart))


# -- the handlers: the documented contract ----------------------------------------------------


@get(
    "/api/cart",
    operation_id="getCart",
    summary="The caller's cart",
    description=WHO + "Without either, or for a cart that holds nothing: the empty cart (status `empty`). "
    "Reading never makes a cart.",
    tags=["cart"],
    security=CART_CALLER,
    opt={FAST_LANE: fast(_show)},
)
async def get_cart(request: Request[Any, Any, Any]) -> Response[CartView]:
    return _response(await _show(request.scope))


@post(
    "/api/cart/items",
    operation_id="addItem",
    summary="Add seats of a tier to the cart (creates the cart)",
    description=WHO + "Without either, a new guest cart is made (201) and its token sent back in "
    "X-Cart-Token and the cart_token cookie. The seats are held for RESERVATION_TTL_SECONDS after the "
    "cart's last change. A line holds at most the tier's max_per_order (409 limit-exceeded, what "
    "`per-order`), a cart at most MAX_LINES_PER_CART tiers per event (`lines`) and MAX_EVENTS_PER_CART events "
    "(`events`), all in one currency (409 currency-mismatch). The same Idempotency-Key on the same cart "
    "adds once.",
    tags=["cart"],
    security=CART_CALLER,
    status_code=200,
    response_headers=NEW_CART_TOKEN,
    responses={
        201: ResponseSpec(
            CartView,
            description="A new guest cart holds the seats; its token is in X-Cart-Token",
            generate_examples=False,
        ),
        **problems(*CHANGE_REFUSALS),
    },
    opt={FAST_LANE: fast(_add, body=_ADD_ITEM, header=b"idempotency-key")},
    before_request=strict_body,
)
async def add_item(
    request: Request[Any, Any, Any], data: JSONBody[AddItem], idempotency_key: IdempotencyKey = None
) -> Response[CartView]:
    return _response(await _add(request.scope, data, idempotency_key))


@put(
    "/api/cart/items/{tier_id:str}",
    operation_id="setItem",
    summary="Set a line's quantity (0 removes it)",
    description=WHO + "Without either, a quantity above 0 makes a new guest cart (its token in X-Cart-Token "
    "and the cart_token cookie); 0 answers the empty cart. Lowering a quantity is never refused for the sale "
    "window or the seats left; raising it is, as an add is.",
    tags=["cart"],
    security=CART_CALLER,
    response_headers=NEW_CART_TOKEN,
    responses=problems(*CHANGE_REFUSALS),
    opt={FAST_LANE: fast(_set, path="tier_id", body=_SET_QUANTITY)},
    before_request=strict_body,
)
async def set_item(
    request: Request[Any, Any, Any], tier_id: FromPath[str], data: JSONBody[SetQuantity]
) -> Response[CartView]:
    return _response(await _set(request.scope, tier_id, data))


@delete(
    "/api/cart/items/{tier_id:str}",
    operation_id="removeItem",
    summary="Remove a line",
    description=WHO + "Releases the line's seats; without a cart, the empty cart.",
    tags=["cart"],
    security=CART_CALLER,
    status_code=200,
    responses=problems(TierNotFound, CheckoutInProgress, ValidationFailed, CheckoutPending),
    opt={FAST_LANE: fast(_remove, path="tier_id")},
)
async def remove_item(request: Request[Any, Any, Any], tier_id: FromPath[str]) -> Response[CartView]:
    return _response(await _remove(request.scope, tier_id))


@delete(
    "/api/cart",
    operation_id="clearCart",
    summary="Empty the cart and release its holds",
    description=WHO + "Without a cart, the empty cart.",
    tags=["cart"],
    security=CART_CALLER,
    status_code=200,
    responses=problems(CheckoutInProgress, CheckoutPending),
    opt={FAST_LANE: fast(_clear)},
)
async def clear_cart(request: Request[Any, Any, Any]) -> Response[CartView]:
    return _response(await _clear(request.scope))


ROUTES = [get_cart, add_item, set_item, remove_item, clear_cart]
