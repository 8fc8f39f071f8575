"""PostgreSQL queries on the promo tables. All parameterised; no domain rules here.

Use counts only move under guards: ``used`` and a customer's ``uses`` go up in the checkout
transaction only while below their limits, and come down once per released redemption.
"""

from __future__ import annotations

import uuid

import asyncpg

from service.promo.dto import PromoCode

_COLUMNS = (
    "code, kind, value, currency, event_id, tier_ids, starts_at, ends_at, min_subtotal, max_uses,"
    " max_uses_per_customer, used, active"
)

FETCH_PROMO = f"SELECT {_COLUMNS} FROM promo_codes WHERE code = $1"

FETCH_PROMO_WITH_CUSTOMER_USES = f"""
SELECT {", ".join("p." + c.strip() for c in _COLUMNS.split(","))}, COALESCE(u.uses, 0) AS customer_uses
FROM promo_codes p
LEFT JOIN promo_customer_uses u ON u.code = p.code AND u.customer_key = $2
WHERE p.code = $1
"""

LOCK_PROMO_USED = "SELECT used FROM promo_codes WHERE code = $1 FOR UPDATE"

# Create, or replace the definition; `used` is kept (only checkouts and releases move it).
UPSERT_PROMO = f"""
INSERT INTO promo_codes (code, kind, value, currency, event_id, tier_ids, starts_at, ends_at, min_subtotal,
                         max_uses, max_uses_per_customer, active)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (code) DO UPDATE SET
    kind = EXCLUDED.kind, value = EXCLUDED.value, currency = EXCLUDED.currency, event_id = EXCLUDED.event_id,
    tier_ids = EXCLUDED.tier_ids, starts_at = EXCLUDED.starts_at, ends_at = EXCLUDED.ends_at,
    min_subtotal = EXCLUDED.min_subtotal, max_uses = EXCLUDED.max_uses,
    max_uses_per_customer = EXCLUDED.max_uses_per_customer, active = EXCLUDED.active,
    updated_at = now()
RETURNING {_COLUMNS}, (xmax = 0) AS created
"""

# The row lock this takes serialises every checkout of the code until its transaction ends.
# $2 false: counted whether active or not (a late payment reviving an order that already
# has its discount).
COUNT_USE = """
UPDATE promo_codes SET used = used + 1
WHERE code = $1 AND (max_uses IS NULL OR used < max_uses) AND (active OR NOT $2::boolean)
RETURNING used, max_uses_per_customer
"""

UNCOUNT_USE = "UPDATE promo_codes SET used = used - 1 WHERE code = $1 AND used > 0"

# Every use is counted, limit or not, so a limit added later sees the past. A conflicting
# insert waits for the other transaction, then re-checks the guard on the committed row.
COUNT_CUSTOMER_USE = """
INSERT INTO promo_customer_uses (code, customer_key, uses) VALUES ($1, $2, 1)
ON CONFLICT (code, customer_key) DO UPDATE SET uses = promo_customer_uses.uses + 1
WHERE $3::integer IS NULL OR promo_customer_uses.uses < $3
RETURNING uses
"""

UNCOUNT_CUSTOMER_USE = """
UPDATE promo_customer_uses SET uses = uses - 1 WHERE code = $1 AND customer_key = $2 AND uses > 0
"""

RECORD_REDEMPTION = """
INSERT INTO promo_redemptions (order_id, code, customer_key, discount) VALUES ($1, $2, $3, $4)
"""

# Marks the redemption released once: a second release finds no row and gives nothing back.
RELEASE_REDEMPTION = """
UPDATE promo_redemptions SET released_at = now()
WHERE order_id = $1 AND released_at IS NULL
RETURNING code, customer_key
"""


LOCK_REDEMPTION = """
SELECT code, customer_key, released_at IS NOT NULL AS released FROM promo_redemptions
WHERE order_id = $1 FOR UPDATE
"""

UNRELEASE_REDEMPTION = "UPDATE promo_redemptions SET released_at = NULL WHERE order_id = $1"


def _promo(record: asyncpg.Record) -> PromoCode:
    return PromoCode(
        code=record["code"],
        kind=record["kind"],
        value=record["value"],
        currency=record["currency"],
        event_id=str(record["event_id"]) if record["event_id"] else None,
        tier_ids=tuple(sorted(str(t) for t in record["tier_ids"])) if record["tier_ids"] is not None else None,
        starts_at=record["starts_at"],
        ends_at=record["ends_at"],
        min_subtotal=record["min_subtotal"],
        max_uses=record["max_uses"],
        max_uses_per_customer=record["max_uses_per_customer"],
        used=record["used"],
        active=record["active"],
    )


async def fetch_promo(conn: asyncpg.Pool | asyncpg.Connection, code: str) -> PromoCode | None:
    record = await conn.fetchrow(FETCH_PROMO, code)
    return _promo(record) if record else None


async def fetch_promo_for_customer(
    conn: asyncpg.Pool | asyncpg.Connection, code: str, customer_key: str | None
) -> tuple[PromoCode | None, int]:
    """(the code, how often this customer has used it); no customer key: 0 uses."""
    record = await conn.fetchrow(FETCH_PROMO_WITH_CUSTOMER_USES, code, customer_key)
    if record is None:
        return None, 0
    return _promo(record), record["customer_uses"]


async def used_for_update(conn: asyncpg.Connection, code: str) -> int | None:
    """The code's use count, locking its row until the transaction ends (None: no such code)."""
    used: int | None = await conn.fetchval(LOCK_PROMO_USED, code)
    return used


async def upsert_promo(conn: asyncpg.Connection, promo: PromoCode) -> tuple[PromoCode, bool]:
    """(the stored code, created)."""
    record = await conn.fetchrow(
        UPSERT_PROMO,
        promo.code,
        promo.kind,
        promo.value,
        promo.currency,
        uuid.UUID(promo.event_id) if promo.event_id else None,
        [uuid.UUID(t) for t in promo.tier_ids] if promo.tier_ids is not None else None,
        promo.starts_at,
        promo.ends_at,
        promo.min_subtotal,
        promo.max_uses,
        promo.max_uses_per_customer,
        promo.active,
    )
    return _promo(record), bool(record["created"])


async def count_use(
    conn: asyncpg.Connection, code: str, *, only_if_active: bool = True
) -> tuple[int, int | None] | None:
    """(used now, per-customer limit), or None when the code is used up (or inactive)."""
    record = await conn.fetchrow(COUNT_USE, code, only_if_active)
    return (record["used"], record["max_uses_per_customer"]) if record else None


async def uncount_use(conn: asyncpg.Connection, code: str) -> None:
    await conn.execute(UNCOUNT_USE, code)


async def count_customer_use(conn: asyncpg.Connection, code: str, customer_key: str, limit: int | None) -> int | None:
    """The customer's uses now, or None when they had reached ``limit`` already."""
    uses: int | None = await conn.fetchval(COUNT_CUSTOMER_USE, code, customer_key, limit)
    return uses


async def uncount_customer_use(conn: asyncpg.Connection, code: str, customer_key: str) -> None:
    await conn.execute(UNCOUNT_CUSTOMER_USE, code, customer_key)


async def record_redemption(
    conn: asyncpg.Connection, order_id: uuid.UUID, code: str, customer_key: str, discount: int
) -> None:
    await conn.execute(RECORD_REDEMPTION, order_id, code, customer_key, discount)


async def release_redemption(conn: asyncpg.Connection, order_id: uuid.UUID) -> tuple[str, str] | None:
    """(code, customer key) of the order's redemption if this call released it, else None."""
    record = await conn.fetchrow(RELEASE_REDEMPTION, order_id)
    return (record["code"], record["customer_key"]) if record else None


async def redemption_for_update(conn: asyncpg.Connection, order_id: uuid.UUID) -> tuple[str, str, bool] | None:
    """(code, customer key, released) of the order's redemption, locked; None without one."""
    record = await conn.fetchrow(LOCK_REDEMPTION, order_id)
    return (record["code"], record["customer_key"], record["released"]) if record else None


async def unrelease_redemption(conn: asyncpg.Connection, order_id: uuid.UUID) -> None:
    await conn.execute(UNRELEASE_REDEMPTION, order_id)
