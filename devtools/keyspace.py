"""Removing every key under a prefix: what tests and the load tool clean up with.

SCAN + UNLINK in batches, never FLUSHDB: the server may be shared. Not for the service's
own paths (it never scans the keyspace); development and test tooling only.
"""

from __future__ import annotations

from redis.asyncio import Redis

_BATCH = 500


def glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)


async def unlink_prefix(client: Redis, prefix: str) -> int:
    """UNLINK every key whose name starts with ``prefix``; how many were removed."""
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=glob_escape(prefix) + "*", count=1000):
        batch.append(key)
        if len(batch) == _BATCH:
            deleted += await client.unlink(*batch)
            batch.clear()
    if batch:
        deleted += await client.unlink(*batch)
    return deleted
