"""The webhook endpoints and their deliveries, as the admin API manages them: register
(the secret shown once), list, rotate the secret, deactivate; list deliveries, replay one.
Knows nothing of HTTP (service/events/admin_handlers.py is the edge)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

from service.cursors import decode_cursor, encode_cursor
from service.errors import Conflict, NotFound, ValidationFailed
from service.events.dto import DeliveryPage, DeliveryStatus, DeliveryView, EndpointSecret, EndpointView, NewEndpoint
from service.events.signing import new_secret
from service.events.sql import (
    DEACTIVATE,
    DELIVERY_ENDPOINT_ACTIVE,
    INSERT_ENDPOINT,
    LIST_DELIVERIES,
    LIST_ENDPOINTS,
    REPLAY,
    ROTATE_SECRET,
)

ROTATION_OVERLAP_SECONDS = 24 * 3600  # the secret before a rotation still signs this long
MAX_PAGE = 100


def checked_url(raw: str) -> str:
    """An http(s) URL with a host, without credentials (listings show the URL) or fragment."""
    try:
        parts = urlsplit(raw)
        port = parts.port  # ValueError when out of range
        httpx.URL(raw)  # what the worker will send to: an IDNA host it cannot encode is refused now
    except (ValueError, httpx.InvalidURL):
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.fragment
        or port == 0
    ):
        raise ValidationFailed(
            "url must be an http or https URL with a host, and no credentials or fragment", field="url"
        )
    return raw


def _endpoint(row: asyncpg.Record) -> EndpointView:
    return EndpointView(
        id=str(row["id"]),
        url=row["url"],
        events=list(row["event_kinds"]),
        active=row["active"],
        description=row["description"],
        created_at=row["created_at"],
        previous_secret_expires_at=row["previous_secret_expires_at"],
        deactivated_at=row["deactivated_at"],
    )


def _with_secret(row: asyncpg.Record, secret: str) -> EndpointSecret:
    view = _endpoint(row)
    return EndpointSecret(**{f: getattr(view, f) for f in EndpointView.__struct_fields__}, secret=secret)


def _delivery(row: asyncpg.Record) -> DeliveryView:
    fields: dict[str, Any] = {k: row[k] for k in DeliveryView.__struct_fields__}
    for name in ("id", "event_id", "order_id", "endpoint_id"):
        fields[name] = str(fields[name]) if fields[name] is not None else None
    return DeliveryView(**fields)


class WebhookEndpoints:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(self, new: NewEndpoint) -> EndpointSecret:
        secret = new_secret()
        kinds = list(dict.fromkeys(new.events))  # once each, in the order given
        row = await self.pool.fetchrow(
            INSERT_ENDPOINT, uuid.uuid4(), checked_url(new.url), kinds, secret, new.description
        )
        return _with_secret(row, secret)

    async def list(self) -> list[EndpointView]:
        return [_endpoint(r) for r in await self.pool.fetch(LIST_ENDPOINTS)]

    async def rotate_secret(self, endpoint_id: uuid.UUID) -> EndpointSecret:
        """A new secret; the one it replaces signs beside it for ROTATION_OVERLAP_SECONDS
        (one rotated before is dropped)."""
        secret = new_secret()
        row = await self.pool.fetchrow(ROTATE_SECRET, endpoint_id, secret, float(ROTATION_OVERLAP_SECONDS))
        if row is None:
            raise NotFound(f"No webhook endpoint {endpoint_id}")
        return _with_secret(row, secret)

    async def deactivate(self, endpoint_id: uuid.UUID) -> EndpointView:
        """Nothing more is sent to it, its pending deliveries included (they become failed)."""
        row = await self.pool.fetchrow(DEACTIVATE, endpoint_id)
        if row is None:
            raise NotFound(f"No webhook endpoint {endpoint_id}")
        return _endpoint(row)

    async def deliveries(
        self,
        *,
        status: DeliveryStatus | None,
        endpoint_id: uuid.UUID | None,
        limit: int,
        cursor: str | None,
    ) -> DeliveryPage:
        """A page of deliveries, newest first."""
        created, after_id = decode_cursor(cursor) if cursor else (None, None)
        limit = max(1, min(limit, MAX_PAGE))
        rows = await self.pool.fetch(LIST_DELIVERIES, status, endpoint_id, created, after_id, limit + 1)
        page = [_delivery(r) for r in rows[:limit]]
        more = len(rows) > limit
        return DeliveryPage(
            deliveries=page, next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None
        )

    async def replay(self, delivery_id: uuid.UUID) -> DeliveryView:
        """Send the delivery again (the worker's next run), whatever its status; Conflict
        while its endpoint is inactive."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(REPLAY, delivery_id)
            if row is not None:
                return _delivery(row)
            active = await conn.fetchval(DELIVERY_ENDPOINT_ACTIVE, delivery_id)
        if active is None:
            raise NotFound(f"No webhook delivery {delivery_id}")
        raise Conflict("The delivery's endpoint is deactivated; register it again to receive events")
