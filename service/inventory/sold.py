"""The seats sold of a tier, as PostgreSQL counts them and Redis follows them.

PostgreSQL's ``quantity_sold`` is the truth; every change bumps the tier's ``sold_version``
by exactly one, in the same guarded UPDATE. Redis counts each committed change once, in
version order (``lua/include/sold.lua``; docs/architecture.md, "Sold: a chain of changes").
This module is where the rest of the service meets that rule: the change as a value, the
read of PostgreSQL's current pairs, and telling Redis of changes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import NamedTuple

import asyncpg
from redis.exceptions import RedisError

from service.redis.scripts import Scripts

log = logging.getLogger("ticket_cart.inventory")

# Each tier's current pair; a read before a change can only lose to its newer version.
SOLD_PAIRS = "SELECT event_id, id, quantity_sold, sold_version FROM ticket_tiers WHERE id = ANY($1::uuid[])"


class SoldChange(NamedTuple):
    """A tier's quantity_sold after a committed change, with the version that orders it,
    and the change itself: ``delta`` seats (negative: given back). Each change bumps the
    version by one, so Redis counts each once (lua/include/sold.lua)."""

    event_id: str
    tier_id: str
    sold: int
    version: int
    delta: int = 0


async def sold_pairs(conn: asyncpg.Pool | asyncpg.Connection, tier_ids: list[uuid.UUID]) -> list[SoldChange]:
    """The tiers' current (quantity_sold, sold_version), to install in Redis."""
    rows = await conn.fetch(SOLD_PAIRS, tier_ids)
    return [SoldChange(str(r["event_id"]), str(r["id"]), r["quantity_sold"], r["sold_version"]) for r in rows]


async def count_sold_changes(scripts: Scripts, changes: Iterable[SoldChange]) -> None:
    """Tell Redis of committed changes of quantity_sold, each counted once (late or
    repeated calls are harmless). If Redis is down, the reconciler installs PostgreSQL's
    counts within a minute."""
    by_event: dict[str, list[tuple[str, int, int]]] = {}
    for change in changes:
        by_event.setdefault(change.event_id, []).append((change.tier_id, change.version, change.delta))
    for event_id, triples in sorted(by_event.items()):
        try:
            await scripts.count_sold(event_id=event_id, changes=triples)
        except (RedisError, OSError) as exc:
            log.warning("sold counts of event %s not counted in Redis (the reconciler will): %r", event_id, exc)
