"""Admin HTTP handlers for payment outcomes (X-Admin-Key): mark an order paid, cancel it."""

from __future__ import annotations

import uuid

from litestar import Request, post

from service.http.guards import ADMIN
from service.http.params import uuid_param
from service.http.services import services
from service.orders.lifecycle import OrderLifecycle, OrderState


def _lifecycle(request: Request) -> OrderLifecycle:
    return OrderLifecycle.of(services(request))


@post("/api/admin/orders/{order_id:str}/mark-paid", summary="Record an order's payment (a late one "
      "revives an expired order if its seats are still free, else 409 seats-gone)", status_code=200, **ADMIN)
async def mark_paid(request: Request, order_id: str) -> OrderState:
    return await _lifecycle(request).mark_paid(uuid.UUID(uuid_param(order_id, "order_id")))


@post("/api/admin/orders/{order_id:str}/cancel", summary="Cancel an order, releasing its seats",
      status_code=200, **ADMIN)
async def cancel(request: Request, order_id: str) -> OrderState:
    return await _lifecycle(request).cancel(uuid.UUID(uuid_param(order_id, "order_id")))


ROUTES = [mark_paid, cancel]
