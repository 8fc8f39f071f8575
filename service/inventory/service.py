"""Tier domain: availability for buyers, catalogue sync and inventory for admins."""

from __future__ import annotations

import uuid

import asyncpg

from service.clock import now_ms
from service.errors import Conflict, TierNotFound, ValidationFailed
from service.inventory.catalog import TierCatalog
from service.inventory.dto import Availability, EventTiers, Inventory, TierDefinition, TierView
from service.inventory.listing import EventListing, sale_status
from service.inventory.store import TierRow, fetch_tier, upsert_tier
from service.redis.replies import TierCounters
from service.redis.scripts import Scripts


def _tier_view(row: TierRow, inventory: Inventory | None = None) -> TierView:
    return TierView(
        id=str(row.id),
        event_id=str(row.event_id),
        name=row.name,
        price=row.price,
        currency=row.currency,
        quantity_total=row.quantity_total,
        quantity_sold=row.quantity_sold,
        max_per_order=row.max_per_order,
        sales_start=row.sales_start,
        sales_end=row.sales_end,
        active=row.active,
        version=row.version,
        sold_version=row.sold_version,
        inventory=inventory,
    )


class InventoryService:
    def __init__(self, pool: asyncpg.Pool, scripts: Scripts, catalog: TierCatalog) -> None:
        self.pool = pool
        self.scripts = scripts
        self.catalog = catalog
        self.listing = EventListing(pool, scripts, catalog)

    async def counters(self, tier_id: str) -> tuple[str, TierCounters]:
        """(event id, Redis counters) of a tier, loading it into Redis when missing."""
        place = await self.catalog.place(tier_id)
        reply = await self.scripts.inventory(event_id=place.event_id, tier_ids=[tier_id])
        if tier_id not in reply.tiers:
            await self.catalog.load(tier_id)
            reply = await self.scripts.inventory(event_id=place.event_id, tier_ids=[tier_id])
        return place.event_id, reply.tiers[tier_id]

    async def availability(self, tier_id: str) -> Availability:
        event_id, counters = await self.counters(tier_id)
        return Availability(
            tier_id=tier_id,
            event_id=event_id,
            available=counters.available,
            status=sale_status(counters, now_ms()),
        )

    async def event_tiers(self, event_id: str) -> EventTiers:
        """The public catalogue of an event (``service.inventory.listing``)."""
        return await self.listing.tiers(event_id)

    async def put_tier(self, tier_id: str, body: TierDefinition) -> tuple[TierView, bool]:
        """Create or update a tier (catalogue sync); install the change in Redis."""
        if body.sales_start and body.sales_end and body.sales_start >= body.sales_end:
            raise ValidationFailed("sales_start must be before sales_end", field="sales_start")
        tid = uuid.UUID(tier_id)
        async with self.pool.acquire() as conn, conn.transaction():
            existing = await conn.fetchrow(
                "SELECT event_id, currency, quantity_sold FROM ticket_tiers WHERE id = $1 FOR UPDATE", tid
            )
            if existing is not None:
                if existing["event_id"] != body.event_id:
                    raise Conflict("A tier cannot move to another event", field="event_id")
                if existing["currency"] != body.currency:
                    raise Conflict("A tier's currency cannot change", field="currency")
                if body.quantity_total < existing["quantity_sold"]:
                    raise Conflict(
                        f"quantity_total cannot go below the {existing['quantity_sold']} seats already sold",
                        field="quantity_total",
                        sold=existing["quantity_sold"],
                    )
            row, created = await upsert_tier(
                conn,
                (
                    tid,
                    body.event_id,
                    body.name,
                    body.price,
                    body.currency,
                    body.quantity_total,
                    body.max_per_order,
                    body.sales_start,
                    body.sales_end,
                    body.active,
                ),
            )
            if row is None:  # the same definition again: nothing changed
                row = await fetch_tier(conn, tid)
        assert row is not None
        await self.catalog.install(row)
        self.catalog.remember(row)
        self.listing.forget(str(row.event_id))
        return _tier_view(row), created

    async def get_tier(self, tier_id: str) -> TierView:
        row = await fetch_tier(self.pool, uuid.UUID(tier_id))
        if row is None:
            raise TierNotFound(f"No ticket tier {tier_id}")
        self.catalog.remember(row)
        _, counters = await self.counters(tier_id)
        inventory = Inventory(
            total=counters.total,
            sold=counters.sold,
            held=counters.held,
            available=counters.available,
            sold_db=row.quantity_sold,
        )
        return _tier_view(row, inventory)
