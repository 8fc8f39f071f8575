"""SePay's webhook: POST /api/payments/sepay (docs/payments.md).

The body is read raw (the HMAC is over its bytes, and a body SePay sends must never be
refused for its shape: SePay would retry it for half an hour), authenticated, then handed to
the intake. Every outcome answers 200 {"success": true}; only a fault of ours (PostgreSQL
unreachable or too slow) answers 503, so SePay retries.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency

from service.errors import NotFound, Unauthorized
from service.http.openapi import SEPAY, problems, raw_body_operation
from service.metrics import SEPAY_AUTH_FAILURES, SEPAY_DELIVERIES
from service.payments.dto import SePayAck
from service.payments.intake import PaymentIntake
from service.payments.payload import SePayTransaction


@post(
    "/api/payments/sepay",
    operation_id="sepayWebhook",
    summary="SePay's bank-transfer notification",
    description="Called by SePay for each transaction on the linked bank account. Authenticated as SEPAY_AUTH "
    "says: `Authorization: Apikey <key>`, or `X-SePay-Signature: sha256=<hex>`, the HMAC-SHA256 of "
    '`"<X-SePay-Timestamp>.<raw body>"`, with the timestamp within 5 minutes of the server\'s time; anything '
    "else is 401 unauthorized and nothing is stored (404 not-found while SEPAY_AUTH is off). The body is "
    "stored as received, unique on SePay's `id`, then matched to the order whose payment code it names "
    "(`code`, else found in `content`): the exact total of a pending (or expired, if its seats are still "
    "free) order pays it. Every other authenticated body is kept for review or ignored, and still answered "
    '200 `{"success": true}`: a duplicate `id`, an unknown or missing code, a short or over payment, an '
    "outgoing transfer, SePay's test ping, a body that is not a SePay transaction at all (so SePay does not "
    "retry it). The body may carry fields this document does not list: SePay may add some, and they are "
    "kept. 503 unavailable: our data store failed, nothing was stored; SePay retries.",
    tags=["payments"],
    security=SEPAY,
    status_code=200,
    operation_class=raw_body_operation(SePayTransaction, "A SePay transaction, as its webhook sends it"),
    responses=problems(NotFound),
)
async def sepay_webhook(request: Request[Any, Any, Any], payments: NamedDependency[PaymentIntake]) -> SePayAck:
    auth = payments.auth
    if not auth.enabled:
        raise NotFound("SePay notifications are off (SEPAY_AUTH)")
    body = await request.body()
    problem = auth.problem(request.headers, body, time.time())
    if problem is not None:
        SEPAY_AUTH_FAILURES.labels(auth.mode).inc()
        raise Unauthorized(f"Not SePay: {problem}")
    outcome = await payments.receive(body, request.headers)
    SEPAY_DELIVERIES.labels(outcome.status, outcome.reason or "").inc()
    return SePayAck()


ROUTES = [sepay_webhook]
