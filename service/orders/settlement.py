"""Settling parts left in checkout by a checkout whose outcome nobody heard.

A part in `checkout` names an order O whose transaction may have committed (a crash, a
lost answer to COMMIT, PostgreSQL unreachable while it was looked up). Nothing may release,
change or merge such a part until O is resolved (``outcome.order_outcome``):
- committed: the part is applied (its seats are sold: held -> sold, the part deleted), and
  the cart remembers O as *unanswered*, so the buyer's next checkout answers O instead of
  making a second order;
- certainly not committed: the part goes back to open, holds kept, naming no order;
- unknown: nothing changes (CheckoutPending); a later try resolves it.

Whoever settles holds the cart's checkout lock, so no checkout of that cart runs meanwhile:
the cart operations here (``settle_cart``), the worker's recovery and the checkout itself.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import NamedTuple

import asyncpg

from service.cart.meta import LAST_ORDER_FIELD, UNANSWERED_FIELD
from service.errors import CheckoutInProgress, CheckoutPending
from service.orders import store
from service.orders.outcome import Outcome, order_outcome
from service.redis.scripts import Scripts
from service.settings import Settings

log = logging.getLogger("ticket_cart.orders")

ABORT_GRACE_MS = 60_000  # the least time a part moved back to open still holds its seats


def checkout_window_ms(database_timeout_seconds: float) -> int:
    """How long a part may stay in checkout before the worker resolves it; also the
    lifetime of the cart's checkout lock."""
    return int((2 * database_timeout_seconds + 30) * 1000)


def commit_fence_ms(database_timeout_seconds: float) -> int:
    """A checkout starts its transaction within this of its begin, and that transaction
    takes O's lock within database_timeout: so it holds the lock well inside the checkout
    window, and the worker's look-up after the deadline waits for it (outcome.py)."""
    return int((database_timeout_seconds + 10) * 1000)


class Settled(NamedTuple):
    outcome: Outcome
    moved: int  # parts this call applied (committed) or reopened (absent)


class Settlement:
    """Resolves orders named by parts in checkout and applies or reopens those parts."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, scripts: Scripts) -> None:
        self.pool = pool
        self.scripts = scripts
        self.db_timeout = settings.database_timeout_seconds
        self.window_ms = checkout_window_ms(self.db_timeout)
        self.meta_ttl_ms = (settings.reservation_ttl_seconds + 3600) * 1000

    async def outcome(self, order_id: str) -> Outcome:
        """Whether O committed, asked for at most twice the database timeout."""
        return await order_outcome(
            self.pool, uuid.UUID(order_id), budget_seconds=2 * self.db_timeout, statement_timeout=self.db_timeout
        )

    async def settle(self, cart_id: str, order_id: str, event_ids: Iterable[str], now_ms: int) -> Settled:
        """Resolve O and apply (committed) or reopen (absent) the cart's parts of O in
        ``event_ids``; UNKNOWN changes nothing. The caller holds the cart's checkout lock.
        A committed O is noted in the cart as unanswered (unless a checkout answered it)."""
        events = sorted(event_ids)
        outcome = await self.outcome(order_id)
        moved = 0
        if outcome is Outcome.COMMITTED:
            moved = await self.apply_committed(cart_id, order_id, events)
            await self.remember_unanswered(cart_id, order_id)
        elif outcome is Outcome.ABSENT:
            replies = await self.scripts.checkout_abort(
                cart_id=cart_id, order_id=order_id, event_ids=events, now_ms=now_ms, grace_ms=ABORT_GRACE_MS
            )
            moved = sum(r.result == "ok" for r in replies.values())
        log.info("cart %s: order %s of events %s resolved %s", cart_id, order_id, events, outcome.value)
        return Settled(outcome, moved)

    async def apply_committed(self, cart_id: str, order_id: str, event_ids: Iterable[str]) -> int:
        """Count committed O's changes of sold in these events and release its parts there;
        how many parts this call applied."""
        oid = uuid.UUID(order_id)
        changes = (await store.order_changes(self.pool, [oid])).get(oid, [])
        by_event: dict[str, list[tuple[str, int, int]]] = {e: [] for e in event_ids}
        for change in changes:
            if change.event_id in by_event:
                by_event[change.event_id].append((change.tier_id, change.version, change.delta))
        replies = await self.scripts.checkout_apply(cart_id=cart_id, order_id=order_id, changes=by_event)
        return sum(r.result == "ok" for r in replies.values())

    async def remember_unanswered(self, cart_id: str, order_id: str) -> None:
        """Note O in the cart's meta unless a checkout already answered it."""
        meta = await self.scripts.cart_meta(cart_id)
        last = meta.get(LAST_ORDER_FIELD.encode(), b"").decode().split()
        if last and last[0] == order_id:
            return
        await self.scripts.set_cart_meta(cart_id, {UNANSWERED_FIELD: order_id}, self.meta_ttl_ms)

    async def settle_cart(self, cart_id: str, parts: dict[str, tuple[str, str]], now_ms: int) -> None:
        """Settle the cart's parts in checkout before a cart operation changes the cart.

        ``parts``: event -> (state, order id), as the cart's view read them. Under the
        cart's checkout lock, taken without waiting: CheckoutInProgress while a checkout
        holds it (it resolves its own parts), CheckoutPending when PostgreSQL cannot say.
        """
        by_order: dict[str, list[str]] = {}
        for event_id, (state, order_id) in parts.items():
            if state == "checkout" and order_id:
                by_order.setdefault(order_id, []).append(event_id)
        if not by_order:
            return
        token = uuid.uuid4().hex
        if not await self.scripts.checkout_lock(cart_id, token, self.window_ms):
            raise CheckoutInProgress(
                "The cart is being checked out; try again in a moment", headers={"Retry-After": "1"}
            )
        try:
            for order_id, events in sorted(by_order.items()):
                if (await self.settle(cart_id, order_id, events, now_ms)).outcome is Outcome.UNKNOWN:
                    raise CheckoutPending(
                        "The cart's last checkout is still being resolved; its seats stay held. "
                        "Retry the checkout, or try this again in a moment",
                        headers={"Retry-After": "2"},
                    )
        finally:
            await self.scripts.checkout_unlock(cart_id, token)
