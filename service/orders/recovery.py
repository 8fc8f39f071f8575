"""Finishing checkouts that stopped between their steps (a crash, a kill, a lost Redis
answer): every part still in checkout after its deadline is resolved against PostgreSQL.

Its order exists -> the part is applied (hold released, PostgreSQL's current sold counts
installed); it does not -> the part goes back to open, holds kept, still naming its order.
The checkout never starts its transaction late enough to commit after the deadline (see
checkout.commit_fence_ms), so "does not exist" is final. The scripts check the part's
state and order id, so two workers, or one worker twice, resolve each part once.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

import msgspec

from service.orders import store
from service.orders.checkout import ABORT_GRACE_MS
from service.redis.replies import DueCheckout

if TYPE_CHECKING:
    from service.http.services import Services

log = logging.getLogger("ticket_cart.orders")


class RecoveryStats(msgspec.Struct):
    events: int = 0  # events looked at
    due: int = 0  # parts found past their checkout deadline
    applied: int = 0  # their order was committed: applied
    aborted: int = 0  # their order was not committed: back to open
    unchanged: int = 0  # resolved meanwhile by someone else, or already gone


async def recover_stuck_checkouts(services: Services, *, now_ms: int, limit: int = 500) -> RecoveryStats:
    """Resolve up to ``limit`` parts whose checkout deadline is at or before ``now_ms``.

    Call again while ``due`` comes back equal to ``limit``. Events are read from the
    active-events index (every event with a loaded tier is there).
    """
    stats = RecoveryStats()
    members = await services.redis.zrange(services.keys.active_events(), 0, -1)
    for member in members:
        if stats.due >= limit:
            break
        event_id = member.decode() if isinstance(member, bytes) else member
        stats.events += 1
        due = await services.scripts.due_checkouts(event_id=event_id, now_ms=now_ms, limit=limit - stats.due)
        stats.due += len(due)
        if due:
            await _resolve(services, event_id, due, now_ms, stats)
    if stats.due:
        log.info("checkout recovery: %s", msgspec.structs.asdict(stats))
    return stats


async def _resolve(services: Services, event_id: str, due: list[DueCheckout], now_ms: int,
                   stats: RecoveryStats) -> None:
    named = sorted({d.part.o for d in due if d.part is not None and d.part.o})
    committed: set[str] = set()
    if named:
        committed = {str(o) for o in await store.existing_orders(services.pool, [uuid.UUID(o) for o in named])}
    tiers = sorted({t for d in due if d.part is not None and d.part.o in committed for t in d.part.l})
    changes = await store.sold_pairs(services.pool, [uuid.UUID(t) for t in tiers]) if tiers else []
    pairs = [(c.tier_id, c.sold, c.version) for c in changes if c.event_id == event_id]
    for item in due:
        part = item.part
        order_id = part.o if part is not None else ""
        if part is not None and order_id in committed:
            replies = await services.scripts.checkout_apply(cart_id=item.cart_id, order_id=order_id,
                                                            sold={event_id: pairs})
            done = replies[event_id].r == "ok"
            stats.applied += done
        else:
            # No part (the entry outlived it): the abort only removes it from the index.
            replies = await services.scripts.checkout_abort(cart_id=item.cart_id, order_id=order_id,
                                                            event_ids=[event_id], now_ms=now_ms,
                                                            grace_ms=ABORT_GRACE_MS)
            done = replies[event_id].r == "ok"
            stats.aborted += done
        stats.unchanged += not done
        if done:
            log.info("checkout recovery: cart %s event %s order %s %s", item.cart_id, event_id, order_id,
                     "applied" if order_id in committed else "moved back to open")
