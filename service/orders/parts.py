"""The cart's parts in Redis through one checkout: steps 1 and 3 of the saga.

A part (one event's lines of the cart) is `open`, or in `checkout` naming the order id it
is being written as. This object moves them, and keeps the one fact that decides whether a
part may go back to open: which order ids are certainly never committed (``uncommitted``).
The fresh id of this checkout is in it until the COMMIT is sent; an earlier try's id joins
it once PostgreSQL says that order is absent. A part naming any other id stays in checkout
for the retry, a cart operation or the worker to settle (settlement.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from service.errors import CheckoutInProgress
from service.inventory.sold import SoldChange
from service.redis.replies import BeginReply

if TYPE_CHECKING:
    from service.inventory.catalog import TierCatalog
    from service.redis.scripts import Scripts

log = logging.getLogger("ticket_cart.orders")


class CheckoutParts:
    """One checkout's view of its cart's parts: begin, one order id, apply, abort."""

    def __init__(
        self, scripts: Scripts, catalog: TierCatalog, cart_id: str, *, clock: Callable[[], int], window_ms: int
    ) -> None:
        self.scripts = scripts
        self.catalog = catalog
        self.cart_id = cart_id
        self.clock = clock
        self.window_ms = window_ms
        self.fresh_id = str(uuid.uuid4())  # the order id this checkout writes
        self.uncommitted: set[str] = {self.fresh_id}  # ids certainly never committed: their parts may reopen

    def committing(self, order_id: str) -> None:
        """The COMMIT of ``order_id`` is about to be sent: its parts may no longer reopen."""
        self.uncommitted.discard(order_id)

    def refused(self, order_id: str) -> None:
        """PostgreSQL refused the order's one statement (writer.py): it never committed."""
        self.uncommitted.add(order_id)

    def absent(self, order_ids: Iterable[str]) -> None:
        """PostgreSQL says these orders do not exist, and none can commit any more."""
        self.uncommitted.update(order_ids)

    async def begin(self, events: list[str], now: int) -> dict[str, BeginReply]:
        """Every part into checkout under the fresh id (a part naming an earlier order keeps
        it); a tier missing from Redis is loaded and its part begun again."""
        deadline = now + self.window_ms
        replies = await self.scripts.checkout_begin(
            cart_id=self.cart_id,
            event_ids=events,
            order_id=self.fresh_id,
            replace="",
            now_ms=now,
            deadline_ms=deadline,
        )
        unloaded = [e for e, r in replies.items() if r.result == "not-loaded"]
        if unloaded:  # a tier evicted from Redis: load it from PostgreSQL, begin again
            try:
                for tier_id in sorted({t for e in unloaded for t in replies[e].tiers}):
                    await self.catalog.load(tier_id)
                replies.update(
                    await self.scripts.checkout_begin(
                        cart_id=self.cart_id,
                        event_ids=unloaded,
                        order_id=self.fresh_id,
                        replace="",
                        now_ms=now,
                        deadline_ms=deadline,
                    )
                )
            except Exception:
                await self.abort({e: r for e, r in replies.items() if r.result == "ok"}, 0)
                raise
        return replies

    async def under_fresh_id(self, begun: dict[str, BeginReply], now: int) -> str:
        """Every part under the fresh id (earlier ids are certainly absent now); ``begun``
        is updated in place."""
        for event_id, reply in list(begun.items()):
            if reply.order_id != self.fresh_id:
                again = await self.scripts.checkout_begin(
                    cart_id=self.cart_id,
                    event_ids=[event_id],
                    order_id=self.fresh_id,
                    replace=reply.order_id,
                    now_ms=now,
                    deadline_ms=now + self.window_ms,
                )
                begun[event_id] = again[event_id]
        if any(r.result != "ok" or r.order_id != self.fresh_id for r in begun.values()):
            raise CheckoutInProgress("The cart changed during checkout; try again", headers={"Retry-After": "1"})
        return self.fresh_id

    async def apply(self, order_id: str, parts: dict[str, BeginReply], sold: Iterable[SoldChange]) -> None:
        """The committed order's parts leave the cart and its changes of `sold` are counted."""
        by_event: dict[str, list[tuple[str, int, int]]] = {e: [] for e in parts}
        for change in sold:
            if change.event_id in by_event:
                by_event[change.event_id].append((change.tier_id, change.version, change.delta))
        try:
            await self.scripts.checkout_apply(cart_id=self.cart_id, order_id=order_id, changes=by_event)
        except (RedisError, OSError) as exc:  # committed: the worker's recovery applies it
            log.warning("order %s committed but its parts are not applied yet (recovery will): %r", order_id, exc)

    async def abort(self, parts: dict[str, BeginReply], grace_ms: int) -> None:
        """Parts of orders certainly never committed back to open, holds kept; parts of any
        other order stay in checkout. On a Redis failure they wait for recovery."""
        try:
            for order_id, group in _by_order(parts).items():
                if order_id in self.uncommitted:
                    await self.scripts.checkout_abort(
                        cart_id=self.cart_id, order_id=order_id, event_ids=group, now_ms=self.clock(), grace_ms=grace_ms
                    )
        except (RedisError, OSError) as exc:
            log.warning("parts of cart %s left in checkout (recovery will resolve them): %r", self.cart_id, exc)


def _by_order(parts: dict[str, BeginReply]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for event_id, reply in sorted(parts.items()):
        groups.setdefault(reply.order_id, []).append(event_id)
    return groups
