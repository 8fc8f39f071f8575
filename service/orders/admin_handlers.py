"""Admin HTTP handlers for payment outcomes (X-Admin-Key): mark an order paid, cancel it.
Each answers the order as ``GET /api/orders/{id}`` shows it."""

from __future__ import annotations

import uuid

from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromPath

from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import uuid_param
from service.orders.dto import OrderView
from service.orders.lifecycle import OrderLifecycle, OrderState
from service.orders.reads import OrderReads


async def _view(orders: NamedDependency[OrderReads], state: OrderState) -> OrderView:
    return await orders.read(state.id)


@post(
    "/api/admin/orders/{order_id:str}/mark-paid",
    summary="Record an order's payment (a late one "
    "revives an expired order if its seats are still free, else 409 seats-gone)",
    status_code=200,
    **ADMIN,
    responses=problems(401, 404, 409),
)
async def mark_paid(
    order_id: FromPath[str], lifecycle: NamedDependency[OrderLifecycle], orders: NamedDependency[OrderReads]
) -> OrderView:
    return await _view(orders, await lifecycle.mark_paid(uuid.UUID(uuid_param(order_id, "order_id"))))


@post(
    "/api/admin/orders/{order_id:str}/cancel",
    summary="Cancel an order, releasing its seats",
    status_code=200,
    **ADMIN,
    responses=problems(401, 404, 409),
)
async def cancel(
    order_id: FromPath[str], lifecycle: NamedDependency[OrderLifecycle], orders: NamedDependency[OrderReads]
) -> OrderView:
    return await _view(orders, await lifecycle.cancel(uuid.UUID(uuid_param(order_id, "order_id"))))


ROUTES = [mark_paid, cancel]
