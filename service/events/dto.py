"""Request and response bodies of the webhook admin API (msgspec Structs, checked at the edge)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.events.payloads import EventKind
from service.validation import RequestBody, Text

DeliveryStatus = Literal["pending", "delivered", "failed", "gone"]


class NewEndpoint(RequestBody):
    url: Annotated[
        str,
        Meta(
            min_length=10,
            max_length=2000,
            pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00]+$",
            description="Where the events are POSTed: an http or https URL with a host, without credentials "
            "or fragment",
        ),
    ]
    events: Annotated[list[EventKind], Meta(min_length=1, max_length=20, description="The event kinds it receives")]
    description: Annotated[Text, Meta(max_length=200)] | None = None


class EndpointView(msgspec.Struct):
    id: str
    url: str
    events: list[str]
    active: bool
    description: str | None
    created_at: dt.datetime
    # While set and in the future, the secret before the last rotation signs too.
    previous_secret_expires_at: dt.datetime | None
    deactivated_at: dt.datetime | None


class EndpointSecret(EndpointView):
    """An endpoint with its signing secret: only in the answers that make one (register,
    rotate). It is never shown again."""

    secret: str


class EndpointList(msgspec.Struct):
    endpoints: list[EndpointView]


class DeliveryView(msgspec.Struct):
    id: str
    event_id: str
    kind: str
    order_id: str | None
    endpoint_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: dt.datetime | None  # None unless pending
    last_status_code: int | None
    last_error: str | None
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime


class DeliveryPage(msgspec.Struct):
    deliveries: list[DeliveryView]
    next_cursor: str | None
