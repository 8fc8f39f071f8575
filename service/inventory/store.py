"""PostgreSQL queries on ``ticket_tiers``. All parameterised; no domain rules here."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import msgspec


class TierRow(msgspec.Struct, frozen=True):
    id: uuid.UUID
    event_id: uuid.UUID
    name: str
    price: int
    currency: str
    quantity_total: int
    quantity_sold: int
    max_per_order: int
    sales_start: dt.datetime | None
    sales_end: dt.datetime | None
    active: bool
    version: int
    sold_version: int


_COLUMNS = (
    "id, event_id, name, price, currency, quantity_total, quantity_sold, max_per_order,"
    " sales_start, sales_end, active, version, sold_version"
)

FETCH_TIER = f"SELECT {_COLUMNS} FROM ticket_tiers WHERE id = $1"

# Create, or update the definition. quantity_sold is never written here; the CHECK
# constraint refuses a total below what is sold (the caller checks first for a clear error).
UPSERT_TIER = f"""
INSERT INTO ticket_tiers (id, event_id, name, price, currency, quantity_total, max_per_order,
                          sales_start, sales_end, active)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
    name = EXCLUDED.name, price = EXCLUDED.price, quantity_total = EXCLUDED.quantity_total,
    max_per_order = EXCLUDED.max_per_order, sales_start = EXCLUDED.sales_start,
    sales_end = EXCLUDED.sales_end, active = EXCLUDED.active,
    version = ticket_tiers.version + 1, updated_at = now()
WHERE (ticket_tiers.name, ticket_tiers.price, ticket_tiers.quantity_total,
       ticket_tiers.max_per_order, ticket_tiers.sales_start, ticket_tiers.sales_end,
       ticket_tiers.active)
  IS DISTINCT FROM
      (EXCLUDED.name, EXCLUDED.price, EXCLUDED.quantity_total, EXCLUDED.max_per_order,
       EXCLUDED.sales_start, EXCLUDED.sales_end, EXCLUDED.active)
RETURNING {_COLUMNS}, (xmax = 0) AS created
"""


def _row(record: asyncpg.Record) -> TierRow:
    return TierRow(**{k: record[k] for k in TierRow.__struct_fields__})


async def fetch_tier(conn: asyncpg.Pool | asyncpg.Connection, tier_id: uuid.UUID) -> TierRow | None:
    record = await conn.fetchrow(FETCH_TIER, tier_id)
    return _row(record) if record else None


async def fetch_tiers(conn: asyncpg.Pool | asyncpg.Connection, tier_ids: list[uuid.UUID]) -> list[TierRow]:
    records = await conn.fetch(f"SELECT {_COLUMNS} FROM ticket_tiers WHERE id = ANY($1::uuid[])", tier_ids)
    return [_row(r) for r in records]


async def fetch_event_tiers(conn: asyncpg.Pool | asyncpg.Connection, event_id: uuid.UUID) -> list[TierRow]:
    """Every tier of an event (the public catalogue), cheapest first."""
    records = await conn.fetch(
        f"SELECT {_COLUMNS} FROM ticket_tiers WHERE event_id = $1 ORDER BY price, name, id", event_id
    )
    return [_row(r) for r in records]


async def upsert_tier(conn: asyncpg.Connection, values: tuple[Any, ...]) -> tuple[TierRow | None, bool]:
    """(row, created); row is None when nothing changed (the same definition again)."""
    record = await conn.fetchrow(UPSERT_TIER, *values)
    if record is None:
        return None, False
    return _row(record), bool(record["created"])
