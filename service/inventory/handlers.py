"""HTTP handlers of tiers: a tier's availability (public, on the fast lane), and the admin's
catalogue sync and inventory (X-Admin-Key)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from litestar.types import Scope

from service.http.fastlane import FAST_LANE, Answer, fast
from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import uuid_param
from service.inventory.dto import Availability, TierDefinition, TierView
from service.inventory.service import InventoryService
from service.wiring import services_of


@put(
    "/api/admin/tiers/{tier_id:str}",
    summary="Create or update a tier",
    **ADMIN,
    responses={
        201: ResponseSpec(TierView, description="The tier was created", generate_examples=False),
        **problems(401, 409),
    },
)
async def put_tier(
    tier_id: FromPath[str], data: JSONBody[TierDefinition], inventory: NamedDependency[InventoryService]
) -> Response[TierView]:
    view, created = await inventory.put_tier(uuid_param(tier_id, "tier_id"), data)
    return Response(view, status_code=201 if created else 200)


@get("/api/admin/tiers/{tier_id:str}", summary="A tier with its inventory", **ADMIN, responses=problems(401, 404))
async def get_tier(tier_id: FromPath[str], inventory: NamedDependency[InventoryService]) -> TierView:
    return await inventory.get_tier(uuid_param(tier_id, "tier_id"))


async def _availability(scope: Scope, tier_id: str) -> Answer:
    return Answer(200, await services_of(scope).inventory.availability(uuid_param(tier_id, "tier_id")))


@get(
    "/api/tiers/{tier_id:str}/availability",
    summary="Seats available and sale status",
    tags=["tiers"],
    responses=problems(404),
    opt={FAST_LANE: fast(_availability, path="tier_id")},
)
async def availability(request: Request[Any, Any, Any], tier_id: FromPath[str]) -> Response[Availability]:
    answer = await _availability(request.scope, tier_id)
    return Response(answer.body, status_code=answer.status)


ROUTES = [put_tier, get_tier, availability]
