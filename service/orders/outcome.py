"""Did order O commit? A certain answer, or an honest "unknown".

A timeout, a lost connection or any error while or after ``COMMIT`` is sent does not say
whether the transaction committed: PostgreSQL may have committed and the answer been lost
(a slow fsync, a dropped connection, a PgBouncer restart, a failover, a synchronous standby
outage). Looking O up is not enough either: a commit still in flight on the old connection
can become visible after the look-up said "absent".

So the checkout's transaction takes an advisory lock keyed by O (``order_lock_key``) before
it writes O's row, and holds it until it ends. A look-up first takes the same lock in share
mode: once granted, every transaction that could write O has ended (PostgreSQL makes a
commit visible before it releases its locks), so "O is there" or "O is not there" is final.
If the lock stays held past a short wait (a backend stuck in its commit, or one whose
client is gone), its holder is terminated and the look-up tried again. PostgreSQL
unreachable: UNKNOWN, and the caller keeps the parts in checkout until a later look-up.

This module never changes an order; it only says what PostgreSQL decided.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid

import asyncpg

log = logging.getLogger("ticket_cart.orders")

LOCK_WAIT_MS = 1_000  # how long one look-up waits for a transaction of O to end
RETRY_PAUSES = (0.1, 0.3, 0.6, 1.0)  # between look-ups that could not reach PostgreSQL

_TRANSIENT = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
    OSError,
    TimeoutError,
)

# The holders of O's lock (the transaction writing O), by the two halves of the key.
_LOCK_HOLDERS = """
SELECT pg_terminate_backend(pid, 1000) FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND mode = 'ExclusiveLock'
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND pid <> pg_backend_pid()
"""


class Outcome(enum.Enum):
    COMMITTED = "committed"  # O is in PostgreSQL
    ABSENT = "absent"  # O is not, and no transaction that could still write it is running
    UNKNOWN = "unknown"  # PostgreSQL could not be asked; ask again later


def order_lock_key(order_id: uuid.UUID) -> int:
    """The advisory lock the transaction writing O holds (63 bits of O: never negative)."""
    return int.from_bytes(order_id.bytes[:8], "big") >> 1


async def order_outcome(
    pool: asyncpg.Pool, order_id: uuid.UUID, *, budget_seconds: float, statement_timeout: float
) -> Outcome:
    """Whether O committed, asked until ``budget_seconds`` are spent (each try bounded by
    ``statement_timeout``). UNKNOWN only when PostgreSQL could not answer in that time."""
    deadline = time.monotonic() + budget_seconds
    key = order_lock_key(order_id)
    pauses = iter(RETRY_PAUSES)
    while True:
        left = deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(0.05, min(statement_timeout, left))):
                return await _look_up(pool, order_id, key)
        except asyncpg.LockNotAvailableError:
            # A transaction of O has held the lock past LOCK_WAIT_MS: stuck in its commit or
            # orphaned by its client. End it; its outcome is then final.
            await _end_lock_holders(pool, order_id, key, statement_timeout)
        except _TRANSIENT as exc:
            log.info("order %s: PostgreSQL did not answer the look-up: %r", order_id, exc)
        pause = next(pauses, RETRY_PAUSES[-1])
        if time.monotonic() + pause >= deadline:
            return Outcome.UNKNOWN
        await asyncio.sleep(pause)


async def _look_up(pool: asyncpg.Pool, order_id: uuid.UUID, key: int) -> Outcome:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}")
        await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", key)
        # A statement of its own: its snapshot is taken after the lock was granted.
        found = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)", order_id)
    return Outcome.COMMITTED if found else Outcome.ABSENT


# ASYNC109: the deadline is its own, and running out of it is logged here, not raised.
async def _end_lock_holders(pool: asyncpg.Pool, order_id: uuid.UUID, key: int, timeout: float) -> None:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            ended = await pool.fetch(_LOCK_HOLDERS, key >> 32, key & 0xFFFFFFFF)
        log.warning("order %s: ended %d PostgreSQL backend(s) stuck in its transaction", order_id, len(ended))
    except (*_TRANSIENT, asyncpg.PostgresError) as exc:
        log.warning("order %s: could not end the transaction holding its lock: %r", order_id, exc)
