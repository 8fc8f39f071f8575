"""Admin HTTP handlers for tiers (X-Admin-Key): catalogue sync and inventory."""

from __future__ import annotations

from litestar import Request, Response, get, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import uuid_param
from service.http.services import services
from service.inventory.dto import TierDefinition, TierView


@put("/api/admin/tiers/{tier_id:str}", summary="Create or update a tier", **ADMIN,
     responses={201: ResponseSpec(TierView, description="The tier was created", generate_examples=False),
                **problems(401, 409)})
async def put_tier(request: Request, tier_id: FromPath[str], data: JSONBody[TierDefinition]) -> Response[TierView]:
    view, created = await services(request).inventory.put_tier(uuid_param(tier_id, "tier_id"), data)
    return Response(view, status_code=201 if created else 200)


@get("/api/admin/tiers/{tier_id:str}", summary="A tier with its inventory", **ADMIN, responses=problems(401, 404))
async def get_tier(request: Request, tier_id: FromPath[str]) -> TierView:
    return await services(request).inventory.get_tier(uuid_param(tier_id, "tier_id"))


ROUTES = [put_tier, get_tier]
