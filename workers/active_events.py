"""The worker's index of events whose tiers are loaded in Redis (``Keys.active_events``).

``Scripts.tier_load`` adds to it; the sweep, the checkout recovery and the reconciler walk
it instead of scanning the keyspace. A finished event leaves it (``retire_if_finished``),
so its size follows the events on sale, not every event ever loaded.
"""

from __future__ import annotations

from service.wiring import Services

# An event whose tier was loaded this recently is kept (retire_event.lua): a buyer who
# just loaded it retries at once, and an admin's change must not be undone under it.
RETIRE_GRACE_MS = 60_000


async def indexed_events(services: Services) -> list[str]:
    """Every event in the index, read in bounded pages (ZSCAN), sorted."""
    return await services.scripts.active_events()


async def retire_if_finished(services: Services, event_id: str, now_ms: int) -> bool:
    """Delete a finished event's Redis state and take it out of the index; True if it was.

    retire_event.lua checks and deletes in one step. The index lives in another slot, so it
    is updated after: ZREM, then a look at the inventory; if a tier load came between the
    script and the ZREM (its own ZADD then landed before our ZREM), the event is put back.
    A load after that look adds the event itself. So an event with an inventory is never
    left out of the index; at worst an event is in it with none, and the next sweep
    removes it again.

    The retired tiers then leave the tier -> event map (``Keys.tier_places``), which would
    otherwise grow by every tier ever sold. A request naming one of them later finds no
    place and loads the tier from PostgreSQL, as for any tier Redis does not hold; a load
    racing this HDEL only costs the next request that same load.
    """
    reply = await services.scripts.retire_event(event_id=event_id, now_ms=now_ms, grace_ms=RETIRE_GRACE_MS)
    if reply.result not in ("retired", "gone"):
        return False
    index = services.keys.active_events()
    await services.redis.zrem(index, event_id)
    if await services.redis.exists(services.keys.event(event_id).inventory):
        await services.redis.zadd(index, {event_id: now_ms})
        return False
    if reply.tier_ids:
        await services.scripts.forget_tier_places(reply.tier_ids)
    return reply.result == "retired"
