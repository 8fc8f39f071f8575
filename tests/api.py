"""Helpers for tests that drive the HTTP API: an in-process client and tier set-up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth import UserTokens
from service.redis.client import create_redis
from service.settings import Settings
from service.wiring import Services, build_services

ADMIN_HEADERS = {"X-Admin-Key": "test-admin-key"}


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


@asynccontextmanager
async def running_services(settings: Settings, db_pool: asyncpg.Pool) -> AsyncIterator[Services]:
    """What the API and the worker run on (a Redis client of its own, the scripts loaded), for
    tests that call the domain directly."""
    redis = create_redis(settings)
    built = build_services(settings, redis, db_pool)
    await built.scripts.load()
    try:
        yield built
    finally:
        await redis.aclose()


def tier_body(event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A tier's definition as PUT /api/admin/tiers/{id} takes it; ``fields`` replace or add."""
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "name": "General admission",
        "price": 500_000,
        "currency": "VND",
        "quantity_total": 100,
        "max_per_order": 6,
        **fields,
    }


async def put_tier(
    client: AsyncTestClient, *, tier_id: str | None = None, event_id: str | None = None, **fields: Any
) -> dict:
    tier_id = tier_id or str(uuid.uuid4())
    body = tier_body(event_id, **fields)
    response = await client.put(f"/api/admin/tiers/{tier_id}", json=body, headers=ADMIN_HEADERS)
    assert response.status_code in (200, 201), response.text
    return response.json()


def bearer(settings: Settings, user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {UserTokens(settings.jwt_secret).issue(user_id)}"}
