"""The minute reconcile: makes every event's Redis counters agree with the truth again.

Per event, one reconcile.lua call recomputes each tier's ``held`` from the event's parts
and installs PostgreSQL's ``(quantity_sold, sold_version)`` by the version rule, read from
PostgreSQL *before* the call, so a stale read can only lose to a newer version and never
raises availability. An event with more than ``MAX_PARTS`` parts is recounted in chunks
of ``RECOUNT_CHUNK`` parts instead (recount_held.lua), since recounting them all at once
would block Redis. Tiers PostgreSQL has but Redis lacks (cold start, flush) or holds at
an older definition are loaded with ``TierCatalog.install``, unless the event is finished
(every tier inactive or its sale ended): the sweep retires finished events, and the
reconciler must not bring them back every minute. The events covered are those in the
active-events index and every event with a tier on sale or yet to open, so after Redis
lost everything, every such tier is back within a minute (a buyer who is faster still
gets the tier loaded on first use by the API).

Drift is a counter that would have stayed wrong without the reconciler:
- ``held``: the counter differs from the seats of the parts present (scripts change both
  in one step, so any difference is real).
- ``sold``: Redis had PostgreSQL's version with another number (written outside the version
  rule), or Redis was behind PostgreSQL with no part naming an order holding that tier (so
  no checkout apply is on its way: an install was lost). Redis behind while such a part
  holds the tier is a checkout in flight: the newer pair is installed but not counted; Redis
  ahead means PostgreSQL was read before a newer commit: nothing to do. A cancel or expiry
  caught between its commit and its install counts as drift too (a window of milliseconds).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections import defaultdict

import asyncpg
import msgspec

from service.clock import utcnow
from service.inventory.store import TierRow
from service.metrics import (
    RECONCILE_DRIFT,
    RECONCILE_DRIFT_SEATS,
    RECONCILE_NOT_RECOUNTED,
)
from service.orders.store import order_changes
from service.redis.replies import CommittedPart, ReconciledTier, RecountedTier
from service.wiring import Services
from workers.active_events import indexed_events
from workers.logs import worker_log

EVENTS_PER_BATCH = 200  # events whose tiers one PostgreSQL query reads
# Events with more parts are recounted in chunks: reconcile.lua reads every part in one
# atomic step (about 4 us a part), and a cart call must never wait long behind it.
MAX_PARTS = 2_000
RECOUNT_CHUNK = 200  # parts one recount_held.lua call reads (about 7 us each: ~1.5 ms)
MAX_RECOUNT_CALLS = 10_000  # per event and run: 2 million parts
MAX_CHECKOUTS = 2_000  # parts in checkout one run looks up in PostgreSQL, per event

_COLUMNS = ", ".join(TierRow.__struct_fields__)
# Keyset pages of the events that have a tier on sale or yet to open (not finished).
SELLING_EVENTS_PAGE = """
SELECT DISTINCT event_id FROM ticket_tiers
WHERE active AND (sales_end IS NULL OR sales_end > now()) AND event_id > $1
ORDER BY event_id
LIMIT $2
"""
TIERS_OF_EVENTS = f"SELECT {_COLUMNS} FROM ticket_tiers WHERE event_id = ANY($1::uuid[]) ORDER BY event_id, id"


class ReconcileStats(msgspec.Struct):
    events: int = 0
    tiers: int = 0  # tiers reconciled, those loaded included
    loaded: int = 0  # tiers missing from Redis, loaded from PostgreSQL
    reloaded: int = 0  # tiers whose definition Redis had at an older version
    sold_installed: int = 0  # newer (sold, version) pairs installed, drift or not
    held_drift: int = 0  # tiers whose held was corrected
    held_drift_seats: int = 0
    sold_drift: int = 0  # tiers whose sold was corrected (see the module's definition)
    sold_drift_seats: int = 0
    recounted_in_chunks: int = 0  # events with more than max_parts parts, recounted in chunks
    not_recounted: int = 0  # events whose chunked recount could not finish: held left as it was
    applied: int = 0  # parts of committed orders still in checkout, applied


async def reconcile_inventory(
    services: Services,
    *,
    events_per_batch: int = EVENTS_PER_BATCH,
    max_parts: int = MAX_PARTS,
    recount_chunk: int = RECOUNT_CHUNK,
) -> ReconcileStats:
    stats = ReconcileStats()
    events = sorted(set(await indexed_events(services)) | set(await selling_events(services.pool)))
    stats.events = len(events)
    for start in range(0, len(events), events_per_batch):
        chunk = events[start : start + events_per_batch]
        tiers = await _tiers_of_events(services.pool, chunk)  # read before the scripts run
        for event_id in chunk:
            await reconcile_event(
                services, event_id, tiers.get(event_id, []), stats, max_parts=max_parts, recount_chunk=recount_chunk
            )
    return stats


async def reconcile_event(
    services: Services,
    event_id: str,
    rows: list[TierRow],
    stats: ReconcileStats,
    *,
    max_parts: int = MAX_PARTS,
    recount_chunk: int = RECOUNT_CHUNK,
) -> None:
    """Reconcile one event against ``rows``, its tiers as PostgreSQL had them just before.

    The parts in checkout are listed after ``rows`` were read, and their orders looked up
    after that: every order ``rows`` count had its part in checkout before they were read,
    so it is either applied by this call or was applied before, and its seats are never
    counted in both ``sold`` and ``held``."""
    pairs = [(str(row.id), row.quantity_sold, row.sold_version) for row in rows]
    by_id = {str(row.id): row for row in rows}
    applied = await committed_parts(services, event_id)
    reply = await services.scripts.reconcile(event_id=event_id, pairs=pairs, max_parts=max_parts, applied=applied)
    stats.applied += reply.applied
    _account(event_id, reply.tiers, by_id, stats)

    # A finished event's missing tiers stay missing: the sweep retires such an event, and
    # the API loads a tier on first use anyway.
    missing = set(reply.missing) if not event_finished(rows) else set()
    stats.tiers += len(reply.tiers) + len(missing)
    stale = [
        row
        for tier_id, row in by_id.items()
        if tier_id in missing or (tier_id in reply.tiers and row.version > reply.tiers[tier_id].version)
    ]
    for row in stale:
        await services.catalog.install(row)
    stats.loaded += len(missing)
    stats.reloaded += len(stale) - len(missing)
    if missing and reply.counted:
        # The tiers just loaded start at held 0: count their parts' seats now.
        again = await services.scripts.reconcile(event_id=event_id, pairs=pairs, max_parts=max_parts)
        _account(event_id, {t: c for t, c in again.tiers.items() if t in missing}, by_id, stats)
    if not reply.counted:
        # Too many parts for one step (reconcile.lua left held alone): recount in chunks,
        # after the loads above, so the tiers just loaded are counted too.
        recounted = await recount_held(services, event_id, chunk=recount_chunk)
        if recounted is None:
            stats.not_recounted += 1
            RECONCILE_NOT_RECOUNTED.inc()
            worker_log().warning("reconcile could not recount held", event_id=event_id, parts=reply.parts)
        else:
            stats.recounted_in_chunks += 1
            _account_held(event_id, recounted, stats)


async def recount_held(
    services: Services, event_id: str, *, chunk: int = RECOUNT_CHUNK, max_calls: int = MAX_RECOUNT_CALLS
) -> dict[str, RecountedTier] | None:
    """Recount the event's held counters in chunks of about ``chunk`` parts
    (recount_held.lua; its header says why the result is exact while carts change between
    the calls). Each tier's held before and as set; {} when the event is not loaded (any
    more); None when the recount could not finish (another recount took over, or
    ``max_calls`` calls were not enough)."""
    recount_id = secrets.token_hex(6)  # never reused: a failed call is never repeated
    cursor = "0"
    for _ in range(max_calls):
        reply = await services.scripts.recount_held(
            event_id=event_id, recount_id=recount_id, cursor=cursor, count=chunk
        )
        if reply.result == "done":
            return reply.tiers
        if reply.result == "not-loaded":
            return {}
        if reply.result != "more":
            return None
        cursor = reply.cursor
    return None


def event_finished(rows: list[TierRow], now: dt.datetime | None = None) -> bool:
    """Whether every tier of the event is inactive or past its sale end (as
    retire_event.lua decides); False for an event PostgreSQL has no tier of."""
    now = now or utcnow()
    return bool(rows) and all(not row.active or (row.sales_end is not None and row.sales_end <= now) for row in rows)


async def committed_parts(services: Services, event_id: str, limit: int = MAX_CHECKOUTS) -> list[CommittedPart]:
    """The event's parts in checkout whose order PostgreSQL has, with the order's changes of
    the event's tiers: a checkout that stopped after its commit (read after the pairs)."""
    in_checkout = await services.scripts.due_checkouts(event_id=event_id, now_ms=None, limit=limit)
    named = {
        d.part.order_id: d.cart_id
        for d in in_checkout
        if d.part is not None and d.part.state == "checkout" and d.part.order_id
    }
    ids = [order_id for order_id in map(_uuid_or_none, named) if order_id is not None]
    if not ids:
        return []
    changes = await order_changes(services.pool, ids)
    return [
        CommittedPart(
            cart_id=named[str(order_id)],
            order_id=str(order_id),
            changes=[(c.tier_id, c.version, c.delta) for c in order if c.event_id == event_id],
        )
        for order_id, order in sorted(changes.items())
    ]


def sold_drift(tier: ReconciledTier, sold: int, version: int) -> int:
    """Seats by which Redis's ``sold`` had drifted from PostgreSQL's ``(sold, version)``;
    0 when it had not (see the module docstring for what counts)."""
    if tier.sold_before == sold:
        return 0
    # checkout is -1 when the parts were not counted: a checkout may be in flight.
    if tier.sold_version_before == version or (tier.sold_version_before < version and tier.checkout == 0):
        return abs(sold - tier.sold_before)
    return 0


def _account_held(
    event_id: str, tiers: dict[str, ReconciledTier] | dict[str, RecountedTier], stats: ReconcileStats
) -> None:
    for tier_id, tier in tiers.items():
        if tier.held != tier.held_before:
            stats.held_drift += 1
            stats.held_drift_seats += _drift(event_id, tier_id, "held", tier.held_before, tier.held)


def _account(event_id: str, tiers: dict[str, ReconciledTier], rows: dict[str, TierRow], stats: ReconcileStats) -> None:
    _account_held(event_id, tiers, stats)
    for tier_id, tier in tiers.items():
        row = rows.get(tier_id)
        if row is None:
            continue
        if (tier.sold, tier.sold_version) != (tier.sold_before, tier.sold_version_before):
            stats.sold_installed += 1
        if sold_drift(tier, row.quantity_sold, row.sold_version):
            stats.sold_drift += 1
            stats.sold_drift_seats += _drift(
                event_id,
                tier_id,
                "sold",
                tier.sold_before,
                tier.sold,
                before_version=tier.sold_version_before,
                after_version=tier.sold_version,
                in_checkout=tier.checkout,
            )


def _drift(event_id: str, tier_id: str, field: str, before: int, after: int, **details: int) -> int:
    """Count and log one corrected counter; the seats it was off by."""
    seats = abs(after - before)
    RECONCILE_DRIFT.labels(field=field).inc()
    RECONCILE_DRIFT_SEATS.labels(field=field).inc(seats)
    worker_log().warning(
        "reconcile drift", field=field, event_id=event_id, tier_id=tier_id, before=before, after=after, **details
    )
    return seats


async def selling_events(pool: asyncpg.Pool, page: int = 1000) -> list[str]:
    """Every event with an active tier whose sale has not ended, in keyset pages."""
    events: list[str] = []
    after = uuid.UUID(int=0)
    while True:
        records = await pool.fetch(SELLING_EVENTS_PAGE, after, page)
        events += [str(r["event_id"]) for r in records]
        if len(records) < page:
            return events
        after = records[-1]["event_id"]


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:  # not an order id this service made (a hand-made part): no order of it
        return None


async def _tiers_of_events(pool: asyncpg.Pool, event_ids: list[str]) -> dict[str, list[TierRow]]:
    ids = []
    for event_id in event_ids:
        try:
            ids.append(uuid.UUID(event_id))
        except ValueError:  # not an event PostgreSQL can know: its held is still reconciled
            continue
    tiers: dict[str, list[TierRow]] = defaultdict(list)
    for record in await pool.fetch(TIERS_OF_EVENTS, ids):
        row = TierRow(**dict(record))
        tiers[str(row.event_id)].append(row)
    return tiers
