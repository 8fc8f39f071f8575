"""HTTP handlers of tiers: a tier's availability (public, on the fast lane), an event's
public catalogue (cacheable), and the admin's catalogue sync and inventory (X-Admin-Key)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, put
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody
from litestar.types import Scope

from service.errors import Conflict, NotFound, TierNotFound, ValidationFailed
from service.http.bodies import strict_body
from service.http.fastlane import FAST_LANE, Answer, fast
from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import uuid_param
from service.inventory.dto import Availability, EventTiers, TierDefinition, TierView
from service.inventory.service import InventoryService
from service.wiring import services_of


@put(
    "/api/admin/tiers/{tier_id:str}",
    operation_id="putTier",
    summary="Create or update a tier",
    description="Catalogue sync: the tier as the catalogue defines it, created (201) or changed (200), and "
    "installed in Redis at once. Rules across fields or over time, each refused before anything changes: "
    "`sales_start` must be before `sales_end` (422 validation-error); a tier never moves to another event or "
    "currency, and quantity_total never goes below the seats sold (409 conflict, `field` naming which).",
    **ADMIN,
    responses={
        201: ResponseSpec(TierView, description="The tier was created", generate_examples=False),
        **problems(Conflict, ValidationFailed),
    },
    before_request=strict_body,
)
async def put_tier(
    tier_id: FromPath[str], data: JSONBody[TierDefinition], inventory: NamedDependency[InventoryService]
) -> Response[TierView]:
    view, created = await inventory.put_tier(uuid_param(tier_id, "tier_id"), data)
    return Response(view, status_code=201 if created else 200)


@get(
    "/api/admin/tiers/{tier_id:str}",
    operation_id="getTier",
    summary="A tier with its inventory",
    **ADMIN,
    responses=problems(TierNotFound, ValidationFailed),
)
async def get_tier(tier_id: FromPath[str], inventory: NamedDependency[InventoryService]) -> TierView:
    return await inventory.get_tier(uuid_param(tier_id, "tier_id"))


async def _availability(scope: Scope, tier_id: str) -> Answer:
    return Answer(200, await services_of(scope).inventory.availability(uuid_param(tier_id, "tier_id")))


@get(
    "/api/tiers/{tier_id:str}/availability",
    operation_id="availability",
    summary="Seats available and sale status",
    tags=["tiers"],
    responses=problems(TierNotFound, ValidationFailed),
    opt={FAST_LANE: fast(_availability, path="tier_id")},
)
async def availability(request: Request[Any, Any, Any], tier_id: FromPath[str]) -> Response[Availability]:
    answer = await _availability(request.scope, tier_id)
    return Response(answer.body, status_code=answer.status)


# Seats left change with every cart, so a cache may keep the catalogue for a few seconds
# only; past that a client revalidates (If-None-Match), and an unchanged one costs no body.
CATALOGUE_CACHE_CONTROL = "public, max-age=5"
IfNoneMatch = Annotated[
    str | None,
    HeaderParameter(name="If-None-Match", description="The ETag of a copy the caller holds: 304 while it is current"),
]


def entity_tag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of If-None-Match (a list, or *) with the current tag."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


@get(
    "/api/events/{event_id:str}/tiers",
    operation_id="eventTiers",
    summary="An event's tiers: prices, seats left, sale status",
    description="The public catalogue of one event, its active tiers cheapest first, with the seats left and "
    "the sale's status now (as GET /api/tiers/{tier_id}/availability says). Cacheable for a few seconds "
    "(Cache-Control); send the ETag back in If-None-Match to revalidate.",
    tags=["tiers"],
    response_headers=[
        ResponseHeader(name="ETag", documentation_only=True, description="The answer's version, for If-None-Match"),
        ResponseHeader(name="Cache-Control", documentation_only=True, description=CATALOGUE_CACHE_CONTROL),
    ],
    responses={
        304: ResponseSpec(
            None, description="Not modified: the copy named by If-None-Match is current", generate_examples=False
        ),
        **problems(NotFound, ValidationFailed),
    },
)
async def event_tiers(
    event_id: FromPath[str], inventory: NamedDependency[InventoryService], if_none_match: IfNoneMatch = None
) -> Response[EventTiers]:
    tiers = await inventory.event_tiers(uuid_param(event_id, "event_id"))
    etag = entity_tag(msgspec.json.encode(tiers))
    headers = {"etag": etag, "cache-control": CATALOGUE_CACHE_CONTROL}
    if matches(if_none_match, etag):
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]  # no body
    return Response(tiers, headers=headers)


ROUTES = [put_tier, get_tier, availability, event_tiers]
