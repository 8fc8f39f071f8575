"""Admin HTTP handlers of payments (X-Admin-Key): what SePay delivered and what each did."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from service.errors import NotFound, ValidationFailed
from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import PageCursor, uuid_param
from service.payments.dto import PaymentPage, PaymentRecord
from service.payments.reads import PaymentReads

UUID_PATTERN = "^[0-9A-Fa-f-]{32,36}$"  # refuses NUL and the like at the edge; uuid_param checks the rest


@get(
    "/api/admin/payments",
    operation_id="listPayments",
    summary="Stored SePay deliveries, newest first",
    description='A page of payments, newest first: `{"payments": [...], "next_cursor": ...}`, each with its '
    "`status` (paid, needs_review, ignored), `reason`, the order it named and the amount. `status` and "
    "`order_id` filter; "
    "`limit` payments at most (1 to 100, default 50). `next_cursor` is null on the last page; else pass it as "
    "`cursor` for the next, older page (only a cursor this API gave out is taken: 422 validation-error, field "
    "`cursor`).",
    **ADMIN,
    responses=problems(ValidationFailed),
)
async def list_payments(
    payment_reads: NamedDependency[PaymentReads],
    status: Annotated[
        Literal["paid", "needs_review", "ignored"] | None, QueryParameter(description="Only payments with this status")
    ] = None,
    order_id: Annotated[
        str | None,
        QueryParameter(
            pattern=UUID_PATTERN, description="Only the transfers that named this order (a UUID; anything else: 422)"
        ),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="The most payments on the page")] = 50,
    cursor: PageCursor = None,
) -> PaymentPage:
    order = uuid.UUID(uuid_param(order_id, "order_id")) if order_id is not None else None
    return await payment_reads.page(status=status, order_id=order, cursor=cursor, limit=limit)


@get(
    "/api/admin/payments/{payment_id:str}",
    operation_id="getPayment",
    summary="One stored SePay delivery, with its body and headers as received",
    description="The payment as the list shows it, with `body` (the body as received, as text), `payload` "
    "(the same as JSON, null when it is not JSON) and the request headers kept (never Authorization).",
    **ADMIN,
    responses=problems(NotFound, ValidationFailed),
)
async def get_payment(payment_id: FromPath[str], payment_reads: NamedDependency[PaymentReads]) -> PaymentRecord:
    return await payment_reads.get(uuid.UUID(uuid_param(payment_id, "payment_id")))


ROUTES = [list_payments, get_payment]
