"""Admin HTTP handlers of the order webhooks (X-Admin-Key): endpoints and their deliveries
(docs/events.md). Parse, call ``WebhookEndpoints``, answer; nothing else."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from service.errors import Conflict, NotFound, ValidationFailed
from service.events.dto import (
    DeliveryPage,
    DeliveryStatus,
    DeliveryView,
    EndpointList,
    EndpointSecret,
    EndpointView,
    NewEndpoint,
)
from service.events.endpoints import WebhookEndpoints
from service.http.bodies import strict_body
from service.http.guards import ADMIN
from service.http.openapi import problems
from service.http.params import PageCursor, uuid_param

UUID_PATTERN = "^[0-9A-Fa-f-]{32,36}$"


@post(
    "/api/admin/webhooks",
    operation_id="registerWebhook",
    summary="Register a webhook endpoint",
    description="The endpoint receives the event kinds it names, each POSTed as JSON and signed per Standard "
    "Webhooks (docs/events.md). The answer holds its signing `secret` (whsec_...): shown this once, never again. "
    "The URL must be http or https with a host, and no credentials or fragment (422 validation-error, field "
    "`url`); a kind named twice counts once.",
    status_code=201,
    **ADMIN,
    responses=problems(ValidationFailed),
    before_request=strict_body,
)
async def register_webhook(data: JSONBody[NewEndpoint], webhooks: NamedDependency[WebhookEndpoints]) -> EndpointSecret:
    return await webhooks.register(data)


@get(
    "/api/admin/webhooks",
    operation_id="listWebhooks",
    summary="The webhook endpoints",
    description="Every endpoint, active or not, oldest first; secrets are never shown.",
    **ADMIN,
)
async def list_webhooks(webhooks: NamedDependency[WebhookEndpoints]) -> EndpointList:
    return EndpointList(endpoints=await webhooks.list())


@post(
    "/api/admin/webhooks/{endpoint_id:str}/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Give a webhook endpoint a new secret",
    description="The answer holds the new `secret`, shown this once. For 24 hours (until "
    "`previous_secret_expires_at`) deliveries carry a signature by the secret it replaces too, so the "
    "receiver can switch over; a secret rotated away before is dropped.",
    status_code=200,
    **ADMIN,
    responses=problems(NotFound, ValidationFailed),
)
async def rotate_webhook_secret(
    endpoint_id: FromPath[str], webhooks: NamedDependency[WebhookEndpoints]
) -> EndpointSecret:
    return await webhooks.rotate_secret(uuid.UUID(uuid_param(endpoint_id, "endpoint_id")))


@post(
    "/api/admin/webhooks/{endpoint_id:str}/deactivate",
    operation_id="deactivateWebhook",
    summary="Stop sending to a webhook endpoint",
    description="Nothing more is sent to it: new events are not delivered to it and its pending deliveries "
    "become `failed`. Again: 200, unchanged. An endpoint that answered 410 Gone was deactivated the same way.",
    status_code=200,
    **ADMIN,
    responses=problems(NotFound, ValidationFailed),
)
async def deactivate_webhook(endpoint_id: FromPath[str], webhooks: NamedDependency[WebhookEndpoints]) -> EndpointView:
    return await webhooks.deactivate(uuid.UUID(uuid_param(endpoint_id, "endpoint_id")))


@get(
    "/api/admin/webhooks/deliveries",
    operation_id="listWebhookDeliveries",
    summary="Webhook deliveries, newest first",
    description='A page of deliveries (one event to one endpoint), newest first: `{"deliveries": [...], '
    '"next_cursor": ...}`, of one `status` and one endpoint when given. `limit` 1 to 100 (50). `next_cursor` '
    "is null on the last page; else pass it as `cursor` for the next, older page (anything else: 422 "
    "validation-error, field `cursor`).",
    **ADMIN,
    responses=problems(ValidationFailed),
)
async def list_webhook_deliveries(
    webhooks: NamedDependency[WebhookEndpoints],
    status: Annotated[DeliveryStatus | None, QueryParameter(description="Only deliveries in this state")] = None,
    endpoint_id: Annotated[
        str | None,
        QueryParameter(pattern=UUID_PATTERN, description="Only deliveries to this endpoint (its id)"),
    ] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100, description="The most deliveries on the page")] = 50,
    cursor: PageCursor = None,
) -> DeliveryPage:
    endpoint = uuid.UUID(uuid_param(endpoint_id, "endpoint_id")) if endpoint_id is not None else None
    return await webhooks.deliveries(status=status, endpoint_id=endpoint, limit=limit, cursor=cursor)


@post(
    "/api/admin/webhooks/deliveries/{delivery_id:str}/replay",
    operation_id="replayWebhookDelivery",
    summary="Send a webhook delivery again",
    description="Whatever its state, the delivery becomes pending and the worker sends it within seconds, with "
    "the same webhook-id and body, retried as a new one would be. 409 conflict when its endpoint is deactivated.",
    status_code=202,
    **ADMIN,
    responses=problems(NotFound, Conflict, ValidationFailed),
)
async def replay_webhook_delivery(
    delivery_id: FromPath[str], webhooks: NamedDependency[WebhookEndpoints]
) -> DeliveryView:
    return await webhooks.replay(uuid.UUID(uuid_param(delivery_id, "delivery_id")))


ROUTES = [
    register_webhook,
    list_webhooks,
    list_webhook_deliveries,
    rotate_webhook_secret,
    deactivate_webhook,
    replay_webhook_delivery,
]
