"""Admin HTTP handlers for payment outcomes (X-Admin-Key): mark an order paid, cancel it.
Each answers the order as ``GET /api/orders/{id}`` shows it."""

from __future__ import annotations

import uuid

from litestar import Request, post
from litestar.params import FromPath

from service.errors import NotFound
from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import uuid_param
from service.http.services import services
from service.orders import store
from service.orders.dto import OrderView
from service.orders.lifecycle import OrderLifecycle, OrderState
from service.orders.service import order_view


async def _view(request: Request, state: OrderState) -> OrderView:
    record = await store.fetch_order(services(request).pool, state.id)
    if record is None:  # pragma: no cover - orders are never deleted
        raise NotFound(f"No order {state.id}")
    return order_view(record)


@post("/api/admin/orders/{order_id:str}/mark-paid", summary="Record an order's payment (a late one "
      "revives an expired order if its seats are still free, else 409 seats-gone)", status_code=200, **ADMIN,
      responses=problems(401, 404, 409))
async def mark_paid(request: Request, order_id: FromPath[str]) -> OrderView:
    lifecycle = OrderLifecycle.of(services(request))
    return await _view(request, await lifecycle.mark_paid(uuid.UUID(uuid_param(order_id, "order_id"))))


@post("/api/admin/orders/{order_id:str}/cancel", summary="Cancel an order, releasing its seats",
      status_code=200, **ADMIN, responses=problems(401, 404, 409))
async def cancel(request: Request, order_id: FromPath[str]) -> OrderView:
    lifecycle = OrderLifecycle.of(services(request))
    return await _view(request, await lifecycle.cancel(uuid.UUID(uuid_param(order_id, "order_id"))))


ROUTES = [mark_paid, cancel]
