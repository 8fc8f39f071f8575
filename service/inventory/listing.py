"""An event's public catalogue: its tiers with the seats left and the sale's status, as
``GET /api/events/{event_id}/tiers`` answers it (the storefront's event page reads it).

The definitions (name, price, limit per order, sale window) come from PostgreSQL and are
kept in the process for ``DEFINITIONS_TTL_SECONDS``: an event page opened by a crowd costs
one query per event and process every few seconds, not one per buyer, and concurrent
misses share that query. The counters (seats left, whether the sale is open, active) come
from Redis, one script call per answer, exactly as the cart's hot path sees them. While
PostgreSQL cannot answer, the last definitions read are served however old they are; with
none, the caller gets the outage (503).
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg

from service.clock import now_ms
from service.errors import NotFound
from service.inventory.catalog import TierCatalog
from service.inventory.dto import CatalogueTier, EventTiers, SaleStatus
from service.inventory.store import TierRow, fetch_event_tiers
from service.redis.replies import TierCounters
from service.redis.scripts import Scripts

DEFINITIONS_TTL_SECONDS = 5.0
_CACHE_LIMIT = 10_000  # events; past it the cache starts afresh (a flood of made-up ids)
# What a read of the definitions may fail with when PostgreSQL is away (then a stale copy serves).
_OUTAGES = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


def sale_status(counters: TierCounters, now_ms: int) -> SaleStatus:
    if not counters.active:
        return "inactive"
    if counters.start_ms and now_ms < counters.start_ms:
        return "not-open"
    if counters.end_ms and now_ms >= counters.end_ms:
        return "closed"
    return "sold-out" if counters.available == 0 else "on-sale"


class EventListing:
    def __init__(self, pool: asyncpg.Pool, scripts: Scripts, catalog: TierCatalog) -> None:
        self._pool = pool
        self._scripts = scripts
        self._catalog = catalog
        self._definitions: dict[str, tuple[float, tuple[TierRow, ...]]] = {}  # event -> (read at, active tiers)
        self._reading: dict[str, asyncio.Future[tuple[TierRow, ...]]] = {}

    async def tiers(self, event_id: str) -> EventTiers:
        """The event's active tiers with their live counters; NotFound when it has none."""
        rows = await self.definitions(event_id)
        if not rows:
            raise NotFound(f"No event {event_id} with tiers on sale")
        counters = await self._counters(event_id, rows)
        now = now_ms()
        max_per_line = self._catalog.max_per_line
        return EventTiers(
            event_id=event_id,
            tiers=[
                CatalogueTier(
                    id=str(row.id),
                    name=row.name,
                    price=row.price,
                    currency=row.currency,
                    max_per_order=min(row.max_per_order, max_per_line or row.max_per_order),
                    sales_start=row.sales_start,
                    sales_end=row.sales_end,
                    status=sale_status(counters[str(row.id)], now),
                    available=counters[str(row.id)].available,
                )
                for row in rows
                if str(row.id) in counters
            ],
        )

    def forget(self, event_id: str) -> None:
        """An admin changed a tier of the event: this process reads it afresh next time."""
        self._definitions.pop(event_id, None)

    async def definitions(self, event_id: str) -> tuple[TierRow, ...]:
        """The event's active tier rows, at most DEFINITIONS_TTL_SECONDS old while PostgreSQL
        answers, the last ones read while it does not."""
        cached = self._definitions.get(event_id)
        if cached is not None and time.monotonic() - cached[0] < DEFINITIONS_TTL_SECONDS:
            return cached[1]
        pending = self._reading.get(event_id)
        if pending is None:
            pending = asyncio.ensure_future(self._read(event_id))
            self._reading[event_id] = pending
            pending.add_done_callback(lambda _: self._reading.pop(event_id, None))
        try:
            return await asyncio.shield(pending)
        except _OUTAGES:
            if cached is not None:
                return cached[1]
            raise

    async def _read(self, event_id: str) -> tuple[TierRow, ...]:
        rows = tuple(row for row in await fetch_event_tiers(self._pool, uuid.UUID(event_id)) if row.active)
        if len(self._definitions) >= _CACHE_LIMIT:
            self._definitions.clear()
        self._definitions[event_id] = (time.monotonic(), rows)
        return rows

    async def _counters(self, event_id: str, rows: tuple[TierRow, ...]) -> dict[str, TierCounters]:
        """Redis's counters of the rows' tiers, installing those Redis does not hold yet."""
        tier_ids = [str(row.id) for row in rows]
        reply = await self._scripts.inventory(event_id=event_id, tier_ids=tier_ids)
        missing = [row for row in rows if str(row.id) not in reply.tiers]
        if not missing:
            return reply.tiers
        for row in missing:
            await self._catalog.install(row)
            self._catalog.remember(row)
        return (await self._scripts.inventory(event_id=event_id, tier_ids=tier_ids)).tiers
