"""Admin HTTP handlers for tiers (X-Admin-Key): catalogue sync and inventory."""

from __future__ import annotations

from litestar.di import NamedDependency
from litestar import Response, get, put
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody

from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import uuid_param
from service.inventory.dto import TierDefinition, TierView
from service.inventory.service import InventoryService


@put("/api/admin/tiers/{tier_id:str}", summary="Create or update a tier", **ADMIN,
     responses={201: ResponseSpec(TierView, description="The tier was created", generate_examples=False),
                **problems(401, 409)})
async def put_tier(tier_id: FromPath[str], data: JSONBody[TierDefinition],
                   inventory: NamedDependency[InventoryService]) -> Response[TierView]:
    view, created = await inventory.put_tier(uuid_param(tier_id, "tier_id"), data)
    return Response(view, status_code=201 if created else 200)


@get("/api/admin/tiers/{tier_id:str}", summary="A tier with its inventory", **ADMIN, responses=problems(401, 404))
async def get_tier(tier_id: FromPath[str], inventory: NamedDependency[InventoryService]) -> TierView:
    return await inventory.get_tier(uuid_param(tier_id, "tier_id"))


ROUTES = [put_tier, get_tier]
