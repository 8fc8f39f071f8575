"""The worker's index of events whose tiers are loaded in Redis (``Keys.active_events``).

``Scripts.tier_load`` adds to it; the sweep walks it instead of scanning the keyspace.
"""

from __future__ import annotations

from service.http.services import Services


async def indexed_events(services: Services) -> list[str]:
    """Every event in the index, read in bounded pages (ZSCAN), sorted."""
    found: set[str] = set()
    async for member, _score in services.redis.zscan_iter(services.keys.active_events(), count=1000):
        found.add(member.decode() if isinstance(member, bytes) else member)
    return sorted(found)
