"""Fixtures of the worker tests: the services the worker builds, on the test servers, and
helpers that make tiers in PostgreSQL and holds in Redis the way the API does."""

from __future__ import annotations

import time
import uuid

import pytest_asyncio
import structlog

from service.inventory.store import TierRow, fetch_tier
from service.wiring import Services, build_services

TTL_MS = 15 * 60 * 1000

INSERT_TIER = """
INSERT INTO ticket_tiers (id, event_id, name, price, currency, quantity_total, max_per_order, active)
VALUES ($1, $2, $3, 100000, 'VND', $4, 50, $5)
"""
# What every change of quantity_sold does: a guarded update that bumps sold_version.
SELL = """
UPDATE ticket_tiers SET quantity_sold = quantity_sold + $2, sold_version = sold_version + 1
WHERE id = $1 AND quantity_sold + $2 BETWEEN 0 AND quantity_total
RETURNING quantity_sold, sold_version
"""


@pytest_asyncio.fixture(loop_scope="session")
async def services(settings, redis, db_pool, clean_state) -> Services:
    built = build_services(settings, redis, db_pool)
    await built.scripts.load()
    yield built
    structlog.reset_defaults()  # a test may have configured the worker's JSON lines


def now_ms() -> int:
    return int(time.time() * 1000)


async def make_tier(
    services: Services,
    *,
    event_id: str | None = None,
    total: int = 10,
    sold: int = 0,
    active: bool = True,
    load: bool = True,
) -> TierRow:
    """A tier in PostgreSQL (``sold`` seats sold, one version bump), loaded in Redis."""
    tier_id = uuid.uuid4()
    event = uuid.UUID(event_id) if event_id else uuid.uuid4()
    await services.pool.execute(INSERT_TIER, tier_id, event, f"Tier {str(tier_id)[:8]}", total, active)
    if sold:
        await sell(services, str(tier_id), sold)
    row = await fetch_tier(services.pool, tier_id)
    if load:
        await services.catalog.install(row)
    return row


async def sell(services: Services, tier_id: str, seats: int) -> tuple[int, int] | None:
    """Change quantity_sold by ``seats`` (negative gives back): the new (sold, version)."""
    record = await services.pool.fetchrow(SELL, uuid.UUID(tier_id), seats)
    return (record["quantity_sold"], record["sold_version"]) if record else None


async def hold(
    services: Services, row: TierRow, quantity: int, *, cart_id: str | None = None, at_ms: int | None = None
) -> str:
    """Reserve ``quantity`` seats of the tier in a cart (reserve.lua, as the cart API does)."""
    cart_id = cart_id or uuid.uuid4().hex
    reply, *_ = await services.scripts.reserve(
        event_id=str(row.event_id),
        cart_id=cart_id,
        tier_id=str(row.id),
        quantity=quantity,
        mode="add",
        now_ms=at_ms or now_ms(),
        ttl_ms=TTL_MS,
        max_lines=20,
        sweep_limit=0,
        request_id="",
        meta_fields={f"ev:{row.event_id}": "1"},
        meta_ttl_ms=2 * TTL_MS,
    )
    assert reply.result == "ok", reply
    return cart_id


async def counters(services: Services, row: TierRow):
    reply = await services.scripts.inventory(event_id=str(row.event_id), tier_ids=[str(row.id)])
    return reply.tiers.get(str(row.id))


async def pg_sold(services: Services, row: TierRow) -> tuple[int, int]:
    record = await services.pool.fetchrow("SELECT quantity_sold, sold_version FROM ticket_tiers WHERE id = $1", row.id)
    return record["quantity_sold"], record["sold_version"]
