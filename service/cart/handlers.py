"""HTTP handlers of the cart: parse, call the domain, map the result. Nothing else."""

from __future__ import annotations

from litestar import Request, Response, delete, get, post, put
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter

from service.cart.dto import AddItem, Availability, CartView, SetQuantity
from service.cart.service import CartService
from service.http.identity import existing_cart, resolve_cart, with_cart_token
from service.http.openapi import problems
from service.http.params import request_id_for_retry, uuid_param
from service.http.services import services

EMPTY_CART = CartView(items=[], item_count=0, currency=None, subtotal=0, discount=0, total=0,
                      promo_code=None, expires_at=None, status="empty")

IdempotencyKey = Parameter(header="Idempotency-Key", required=False, default=None,
                           description="Makes a retried add change nothing")


NEW_CART_TOKEN = [ResponseHeader(name="X-Cart-Token", documentation_only=True,
                                 description="A new guest cart's token, sent once (also the cart_token cookie)")]


def _carts(request: Request) -> CartService:
    return services(request).carts


def _secure(request: Request) -> bool:
    return services(request).settings.is_production


@get("/api/cart", summary="The caller's cart", tags=["cart"], responses=problems(401))
async def get_cart(request: Request) -> CartView:
    cart = existing_cart(request)
    return EMPTY_CART if cart is None else await services(request).carts.show(cart)


@post("/api/cart/items", summary="Add seats of a tier to the cart (creates the cart)", tags=["cart"],
      status_code=200, response_headers=NEW_CART_TOKEN,
      responses={201: ResponseSpec(CartView, description="A new guest cart holds the seats; its token is in "
                                                       "X-Cart-Token", generate_examples=False),
                 **problems(401, 404, 409)})
async def add_item(request: Request, data: JSONBody[AddItem],
                   idempotency_key: str | None = IdempotencyKey) -> Response[CartView]:
    s = services(request)
    cart, new_token = resolve_cart(request, s.cart_tokens, s.user_tokens, create=True)
    assert cart is not None
    view = await s.carts.change(cart, str(data.tier_id), data.quantity, "add",
                                request_id_for_retry(idempotency_key))
    return with_cart_token(Response(view, status_code=201 if new_token else 200), new_token, _secure(request))


@put("/api/cart/items/{tier_id:str}", summary="Set a line's quantity (0 removes it)", tags=["cart"],
     response_headers=NEW_CART_TOKEN, responses=problems(401, 404, 409))
async def set_item(request: Request, tier_id: FromPath[str], data: JSONBody[SetQuantity]) -> Response[CartView]:
    s = services(request)
    tier = uuid_param(tier_id, "tier_id")
    cart, new_token = resolve_cart(request, s.cart_tokens, s.user_tokens, create=data.quantity > 0)
    if cart is None:
        return Response(EMPTY_CART)
    view = await s.carts.change(cart, tier, data.quantity, "set", request_id_for_retry(None))
    return with_cart_token(Response(view), new_token, _secure(request))


@delete("/api/cart/items/{tier_id:str}", summary="Remove a line", tags=["cart"], status_code=200,
        responses=problems(401, 404, 409))
async def remove_item(request: Request, tier_id: FromPath[str]) -> CartView:
    tier = uuid_param(tier_id, "tier_id")
    cart = existing_cart(request)
    return EMPTY_CART if cart is None else await services(request).carts.remove(cart, tier)


@delete("/api/cart", summary="Empty the cart and release its holds", tags=["cart"], status_code=200,
        responses=problems(401, 409))
async def clear_cart(request: Request) -> CartView:
    cart = existing_cart(request)
    return EMPTY_CART if cart is None else await services(request).carts.clear(cart)


@get("/api/tiers/{tier_id:str}/availability", summary="Seats available and sale status", tags=["tiers"],
     responses=problems(404))
async def availability(request: Request, tier_id: FromPath[str]) -> Availability:
    return await services(request).inventory.availability(uuid_param(tier_id, "tier_id"))


ROUTES = [get_cart, add_item, set_item, remove_item, clear_cart, availability]
