"""Where a tier lives (its event) and its copy in Redis.

A tier's event and currency never change, so each process remembers them after the first
look-up and the hot path needs no PostgreSQL. The first look-up asks Redis (the
``tier-places`` hash, written by every tier load) before PostgreSQL, so a process started
while PostgreSQL is down serves carts of every tier Redis holds. Unknown tier ids are
remembered briefly too, so a flood of made-up ids cannot turn into a flood of queries.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import asyncpg

from service.clock import now_ms
from service.errors import TierNotFound
from service.inventory.store import TierRow, fetch_tier
from service.redis.replies import TierLoadReply
from service.redis.scripts import Scripts, TierFields, TierPlace

_UNKNOWN_TTL_SECONDS = 5.0
_CACHE_LIMIT = 100_000


def _place_of(row: TierRow) -> TierPlace:
    return TierPlace(event_id=str(row.event_id), currency=row.currency)


def _ms(value: dt.datetime | None) -> int:
    return int(value.timestamp() * 1000) if value is not None else 0


def tier_fields(row: TierRow, max_per_line: int | None = None) -> TierFields:
    """The row as Redis keeps it; ``max_per_line`` (MAX_QUANTITY_PER_LINE) caps the tier's
    max_per_order, so the reserve and merge scripts enforce the lower of the two."""
    return TierFields(
        tier_id=str(row.id),
        version=row.version,
        total=row.quantity_total,
        max_per_order=min(row.max_per_order, max_per_line or row.max_per_order),
        price=row.price,
        currency=row.currency,
        name=row.name,
        sales_start_ms=_ms(row.sales_start),
        sales_end_ms=_ms(row.sales_end),
        active=row.active,
        sold=row.quantity_sold,
        sold_version=row.sold_version,
    )


class TierCatalog:
    def __init__(self, pool: asyncpg.Pool, scripts: Scripts, max_per_line: int | None = None) -> None:
        self._pool = pool
        self._scripts = scripts
        self._max_per_line = max_per_line
        self._places: dict[str, TierPlace] = {}
        self._unknown: dict[str, float] = {}
        self._loading: dict[str, asyncio.Future[TierRow]] = {}

    @property
    def max_per_line(self) -> int | None:
        """MAX_QUANTITY_PER_LINE, which caps every tier's max_per_order (None: no cap)."""
        return self._max_per_line

    def remember(self, row: TierRow) -> TierPlace:
        return self._remember(str(row.id), _place_of(row))

    def _remember(self, tier_id: str, place: TierPlace) -> TierPlace:
        if len(self._places) >= _CACHE_LIMIT:
            self._places.clear()
        self._places[tier_id] = place
        self._unknown.pop(tier_id, None)
        return place

    async def place(self, tier_id: str) -> TierPlace:
        """The tier's event and currency; TierNotFound for an unknown tier."""
        place = self._places.get(tier_id)
        if place is not None:
            return place
        seen_missing = self._unknown.get(tier_id)
        if seen_missing is not None and time.monotonic() - seen_missing < _UNKNOWN_TTL_SECONDS:
            raise TierNotFound(f"No ticket tier {tier_id}")
        known = await self._scripts.tier_place(tier_id)
        if known is not None:
            return self._remember(tier_id, known)
        row = await self.load(tier_id)
        return self.remember(row)

    async def load(self, tier_id: str) -> TierRow:
        """Read the tier from PostgreSQL and install it in Redis by the version rule.

        Concurrent loads of one tier share one query: when a hot tier is cold (a new
        process, a flushed Redis), a thousand buyers cost one read, not a thousand.
        """
        pending = self._loading.get(tier_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load(tier_id))
            self._loading[tier_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(tier_id, None))
        return await asyncio.shield(pending)

    async def _load(self, tier_id: str) -> TierRow:
        row = await fetch_tier(self._pool, uuid.UUID(tier_id))
        if row is None:
            if len(self._unknown) >= _CACHE_LIMIT:
                self._unknown.clear()
            self._unknown[tier_id] = time.monotonic()
            raise TierNotFound(f"No ticket tier {tier_id}")
        await self.install(row)
        self.remember(row)
        return row

    async def install(self, row: TierRow) -> TierLoadReply:
        return await self._scripts.tier_load(
            event_id=str(row.event_id), tier=tier_fields(row, self._max_per_line), now_ms=now_ms()
        )
