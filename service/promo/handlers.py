"""HTTP handlers of promo codes: the admin definitions and the buyer's apply / remove."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from service.auth import key_matches
from service.cart.dto import CartView
from service.cart.handlers import EMPTY_CART, WHO
from service.errors import (
    CheckoutInProgress,
    CheckoutPending,
    Conflict,
    InvalidPromo,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from service.http.bodies import strict_body
from service.http.forwarded import client_addresses
from service.http.guards import ADMIN
from service.http.identity import existing_cart
from service.http.openapi import CART_CALLER, problems
from service.http.ratelimit import client_subject
from service.promo.dto import ApplyPromo, PromoCode, PromoDefinition
from service.promo.on_cart import CartPromos
from service.promo.service import PromoService
from service.wiring import services_of


def client_address(request: Request[Any, Any, Any]) -> str | None:
    """Whose attempts the per-address limit counts: the client's address as the general
    limit sees it (behind trusted proxies, the forwarded one; an IPv6 client by its /64);
    None for a trusted backend (X-Service-Key), which speaks for many buyers from one
    address."""
    settings = services_of(request.scope).settings
    if key_matches(settings.trusted_service_key, request.headers.get("x-service-key")):
        return None
    return client_subject(client_addresses(settings.trusted_proxies).client(request.scope)).name


@post(
    "/api/admin/promo-codes",
    operation_id="putPromoCode",
    summary="Create a promo code, or replace its definition",
    description="Created: 201; a code that exists (codes are case-insensitive) gets the new definition: 200. "
    "Rules across fields, each a 422 validation-error naming the field: a `percent` code's value is 1 to 100 "
    "and it has no currency; a `fixed` code needs the currency of its value; `starts_at` must be before "
    "`ends_at`; `tier_ids`, when given, names at least one tier. 409 conflict when max_uses would go below the "
    "uses already counted.",
    **ADMIN,
    responses={
        200: ResponseSpec(PromoCode, description="The definition was replaced", generate_examples=False),
        **problems(Conflict, ValidationFailed),
    },
    before_request=strict_body,
)
async def put_promo_code(data: JSONBody[PromoDefinition], promos: NamedDependency[PromoService]) -> Response[PromoCode]:
    view, created = await promos.put(data)
    return Response(view, status_code=201 if created else 200)


@get(
    "/api/admin/promo-codes/{code:str}",
    operation_id="getPromoCode",
    summary="A promo code with its use count",
    description="The code is case-insensitive; one that cannot be a code is 404 like an unknown one.",
    **ADMIN,
    responses=problems(NotFound),
)
async def get_promo_code(code: FromPath[str], promos: NamedDependency[PromoService]) -> PromoCode:
    return await promos.get(code)


@post(
    "/api/cart/promo",
    operation_id="applyPromo",
    summary="Apply a promo code to the cart",
    description=WHO + "The code must exist and apply to the cart now, else 422 invalid-promo with a `reason` "
    "(not-found, inactive, not-started, expired, exhausted, not-applicable, currency, below-minimum; without "
    "a cart: not-applicable) and the cart keeps its previous code. Every attempt counts against "
    "PROMO_ATTEMPTS_PER_MINUTE per cart and PROMO_ATTEMPTS_ADDRESS_PER_MINUTE per address (429 "
    "rate-limited, with Retry-After), the refused ones too.",
    tags=["cart"],
    security=CART_CALLER,
    status_code=200,
    responses=problems(CheckoutInProgress, InvalidPromo, ValidationFailed, RateLimited, CheckoutPending),
    before_request=strict_body,
)
async def apply_promo(
    request: Request[Any, Any, Any],
    data: JSONBody[ApplyPromo],
    cart_promos: NamedDependency[CartPromos],
) -> Response[CartView]:
    cart = existing_cart(request.scope)
    view, limit = await cart_promos.apply(cart, data.code, client_address(request))
    return Response(view, headers=limit.headers())


@delete(
    "/api/cart/promo",
    operation_id="removePromo",
    summary="Remove the cart's promo code",
    description=WHO + "Without a cart, or a cart without a code: the cart as it is.",
    tags=["cart"],
    security=CART_CALLER,
    status_code=200,
    responses=problems(CheckoutInProgress, CheckoutPending),
)
async def remove_promo(request: Request[Any, Any, Any], cart_promos: NamedDependency[CartPromos]) -> CartView:
    cart = existing_cart(request.scope)
    if cart is None:
        return EMPTY_CART
    return await cart_promos.remove(cart)


ROUTES = [put_promo_code, get_promo_code, apply_promo, remove_promo]
