"""Admin HTTP handlers for payment outcomes (X-Admin-Key): mark an order paid, cancel it.
Each answers the order as ``GET /api/orders/{id}`` shows it."""

from __future__ import annotations

import uuid

from litestar import post
from litestar.di import NamedDependency
from litestar.params import FromPath

from service.errors import Conflict, NotFound, SeatsGone, ValidationFailed
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
    operation_id="markPaid",
    summary="Record an order's payment",
    description="pending_payment becomes paid; paid stays paid (200, unchanged). A late payment revives an "
    "expired order if every tier still has its seats, else 409 seats-gone and nothing changes (refund the "
    "payment). A cancelled order cannot be paid: 409 conflict. Answers the order as GET /api/orders/{order_id} "
    "shows it.",
    status_code=200,
    **ADMIN,
    responses=problems(NotFound, SeatsGone, Conflict, ValidationFailed),
)
async def mark_paid(
    order_id: FromPath[str], lifecycle: NamedDependency[OrderLifecycle], orders: NamedDependency[OrderReads]
) -> OrderView:
    return await _view(orders, await lifecycle.mark_paid(uuid.UUID(uuid_param(order_id, "order_id"))))


@post(
    "/api/admin/orders/{order_id:str}/cancel",
    operation_id="cancelOrder",
    summary="Cancel an order, releasing its seats",
    description="pending_payment or paid becomes cancelled and its seats and promo use go back; an expired "
    "one becomes cancelled too (its seats went back when it expired); a cancelled one stays as it is (200). "
    "Answers the order as GET /api/orders/{order_id} shows it.",
    status_code=200,
    **ADMIN,
    responses=problems(NotFound, ValidationFailed),
)
async def cancel(
    order_id: FromPath[str], lifecycle: NamedDependency[OrderLifecycle], orders: NamedDependency[OrderReads]
) -> OrderView:
    return await _view(orders, await lifecycle.cancel(uuid.UUID(uuid_param(order_id, "order_id"))))


ROUTES = [mark_paid, cancel]
