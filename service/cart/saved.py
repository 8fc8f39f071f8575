"""A signed-in user's cart, kept in PostgreSQL behind Redis, so a Redis loss does not lose it.

Written behind, never on the request path: a change of a signed-in user's cart only notes
the cart in this process's dirty set (``SavedCarts.mark``); a background task reads those
carts from Redis about once a second and upserts them, each stamped with the time it was
read (``saved_ms``), and a write older than the row is ignored (the checkout empties the
row in its own transaction, so a late write never brings back seats the user bought).

Restored on the next use after a loss (``service/cart/restore.py``): when a signed-in
user's cart meta is missing its ``pg`` note, the saved parts whose holds would still be alive are
held again as fresh holds where seats are free, through the same reserve script as any
add (so a restore can never oversell), and the answer says which lines came back short.

A guest's cart is not saved: it may be lost on a total Redis loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

import asyncpg
import msgspec
from redis.exceptions import RedisError

from service.cart.meta import PROMO_FIELD, events_of, meta_text
from service.clock import now_ms
from service.redis.replies import ViewReply
from service.redis.scripts import Scripts

log = logging.getLogger("ticket_cart.cart")

SAVE_EVERY_SECONDS = 1.0
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

SAVE = """
INSERT INTO user_carts (user_id, parts, promo_code, saved_ms)
SELECT * FROM unnest($1::text[], $2::jsonb[], $3::text[], $4::bigint[])
ON CONFLICT (user_id) DO UPDATE
SET parts = EXCLUDED.parts, promo_code = EXCLUDED.promo_code, saved_ms = EXCLUDED.saved_ms, updated_at = now()
WHERE user_carts.saved_ms < EXCLUDED.saved_ms
"""
LOAD = "SELECT parts, promo_code FROM user_carts WHERE user_id = $1"


class SavedPart(msgspec.Struct, frozen=True):
    x: int  # when its holds expire (ms)
    l: dict[str, int]  # noqa: E741 (tier id -> quantity, as the part stores them)


class SavedCart(msgspec.Struct, frozen=True):
    parts: dict[str, SavedPart]  # event id -> its open part
    promo_code: str | None = None


def saved_parts(parts: dict[str, ViewReply], now_ms: int) -> dict[str, SavedPart]:
    """The parts worth keeping: open and not expired (a part in checkout is being bought;
    if its checkout fails it reopens, and the cart is saved again)."""
    return {
        event_id: SavedPart(x=part.expiry_ms, l={tier: line.quantity for tier, line in part.lines.items()})
        for event_id, part in parts.items()
        if part.state == "open" and part.lines and part.expiry_ms > now_ms
    }


class SavedCarts:
    """Signed-in users' carts in PostgreSQL: the dirty set, the task that writes it behind,
    and the read a restore needs. One per process."""

    def __init__(self, pool: asyncpg.Pool, scripts: Scripts, *, every_seconds: float = SAVE_EVERY_SECONDS) -> None:
        self.pool = pool
        self.scripts = scripts
        self.every = every_seconds
        self._dirty: dict[str, str] = {}  # cart id -> user id
        self._task: asyncio.Task[None] | None = None

    async def load(self, user_id: str) -> SavedCart | None:
        row = await self.pool.fetchrow(LOAD, user_id)
        if row is None:
            return None
        return SavedCart(
            parts=msgspec.json.decode(row["parts"], type=dict[str, SavedPart]), promo_code=row["promo_code"]
        )

    def mark(self, cart_id: str, user_id: str) -> None:
        """Note a changed cart (a dict write: the request pays nothing more)."""
        self._dirty[cart_id] = user_id
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cart-saver")

    async def _run(self) -> None:
        while self._dirty:
            await asyncio.sleep(self.every)
            await self.save_now()

    async def save_now(self) -> int:
        """Write every dirty cart now; those that fail stay dirty for the next round."""
        batch, self._dirty = self._dirty, {}
        if not batch:
            return 0
        try:
            await self._save(batch.items())
        except (RedisError, *_STORE_ERRORS) as exc:
            log.warning("%d signed-in carts not saved yet (next try in %.0f s): %r", len(batch), self.every, exc)
            for cart_id, user_id in batch.items():
                self._dirty.setdefault(cart_id, user_id)
            return 0
        return len(batch)

    async def _save(self, carts: Iterable[tuple[str, str]]) -> None:
        users, parts, promos, stamps = [], [], [], []
        for cart_id, user_id in carts:
            read_at = now_ms()
            meta = await self.scripts.cart_meta(cart_id)
            views = await self.scripts.views(cart_id=cart_id, event_ids=events_of(meta), now_ms=read_at)
            promo = meta_text(meta, PROMO_FIELD)
            users.append(user_id)
            parts.append(msgspec.json.encode(saved_parts(views, read_at)).decode())
            promos.append(promo)
            stamps.append(read_at)
        await self.pool.execute(SAVE, users, parts, promos, stamps)

    async def close(self) -> None:
        """Stop the task and write what is left (the process is stopping)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.save_now()
