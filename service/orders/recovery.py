"""Finishing checkouts that stopped between their steps (a crash, a kill, a lost answer,
PostgreSQL unreachable while the checkout looked its order up): every part still in
checkout after its deadline is settled against PostgreSQL (settlement.py).

Its order committed -> the part is applied (its seats counted sold, its hold released) and
the cart remembers the order as unanswered, so the buyer's next checkout answers it; its
order certainly did not -> the part goes back to open, holds kept; PostgreSQL cannot say
-> the part stays in checkout and the next run asks again. Each cart is settled under its
checkout lock, so a checkout of the same cart never runs meanwhile; a cart whose lock is
held is left for the next run. The scripts check the part's state and order id, so two
workers, or one worker twice, settle each part once.
"""

from __future__ import annotations

import logging
import uuid

import msgspec

from service.orders.outcome import Outcome
from service.orders.settlement import Settlement
from service.redis.replies import DueCheckout
from service.redis.scripts import Scripts

log = logging.getLogger("ticket_cart.orders")


class RecoveryStats(msgspec.Struct):
    events: int = 0  # events looked at
    due: int = 0  # parts found past their checkout deadline
    applied: int = 0  # their order was committed: applied
    aborted: int = 0  # their order was not committed: back to open
    unknown: int = 0  # PostgreSQL could not say: left in checkout for the next run
    busy: int = 0  # a checkout of the cart held its lock: left for the next run
    unchanged: int = 0  # settled meanwhile by someone else, or already gone


class CheckoutRecovery:
    """The worker's half of the checkout: parts nobody came back for, settled after their deadline."""

    def __init__(self, scripts: Scripts, settlement: Settlement) -> None:
        self.scripts = scripts
        self.settlement = settlement

    async def recover(self, *, now_ms: int, limit: int = 500) -> RecoveryStats:
        """Settle up to ``limit`` parts whose checkout deadline is at or before ``now_ms``.

        Call again while ``due`` comes back equal to ``limit``. Events are read from the
        active-events index (every event with a loaded tier is there).
        """
        stats = RecoveryStats()
        for event_id in await self.scripts.active_events():
            if stats.due >= limit:
                break
            stats.events += 1
            due = await self.scripts.due_checkouts(event_id=event_id, now_ms=now_ms, limit=limit - stats.due)
            stats.due += len(due)
            for item in due:
                await self._settle(event_id, item, now_ms, stats)
        if stats.due:
            log.info("checkout recovery: %s", msgspec.structs.asdict(stats))
        return stats

    async def _settle(self, event_id: str, item: DueCheckout, now_ms: int, stats: RecoveryStats) -> None:
        order_id = item.part.order_id if item.part is not None and item.part.state == "checkout" else ""
        if not order_id:
            # No part in checkout (the index entry outlived it): the abort only tidies the index.
            await self.scripts.checkout_abort(
                cart_id=item.cart_id, order_id=order_id, event_ids=[event_id], now_ms=now_ms, grace_ms=0
            )
            stats.unchanged += 1
            return
        token = uuid.uuid4().hex
        if not await self.scripts.checkout_lock(item.cart_id, token, self.settlement.window_ms):
            stats.busy += 1
            return
        try:
            settled = await self.settlement.settle(item.cart_id, order_id, [event_id], now_ms)
        finally:
            await self.scripts.checkout_unlock(item.cart_id, token)
        if settled.outcome is Outcome.UNKNOWN:
            stats.unknown += 1
        elif not settled.moved:
            stats.unchanged += 1  # settled meanwhile by someone else
        elif settled.outcome is Outcome.COMMITTED:
            stats.applied += 1
        else:
            stats.aborted += 1
