"""Step 2 of the checkout saga: the order's one PostgreSQL transaction.

It writes the order, its items and tickets, takes the seats (guarded: store.insert_order),
records the order's events in the outbox (in the same statement: service/events) and counts
the promo use. What the checkout must know is how it ended, and that is the
whole interface:
- it returns: committed, and answered;
- it raises an error of PostgreSQL or the network: certainly not committed (the COMMIT was
  never sent);
- ExistingOrder: the cart's Idempotency-Key already names a committed order;
- CommitUnanswered: the COMMIT was sent and no answer said how it ended. The connection is
  closed first, so a commit still in flight on it ends, and the order's outcome can be
  looked up with certainty (outcome.py).

A clash on a unique code draws the order again (fresh codes); a deadlock tries again.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg

from service.orders import store
from service.orders.store import Inserted, NewOrder

if TYPE_CHECKING:
    from service.promo.service import PromoService

__all__ = ["CODE_DRAWS", "DEADLOCK_RETRIES", "CommitUnanswered", "ExistingOrder", "OrderWriter"]

CODE_DRAWS = 5  # fresh codes after a clash on a unique code
DEADLOCK_RETRIES = 2
_CODE_CONSTRAINTS = {"orders_number_key", "orders_payment_code_key", "tickets_code_key", "tickets_pkey"}


class ExistingOrder(Exception):
    """The transaction met an order that already exists (by the idempotency key)."""

    def __init__(self, order_id: uuid.UUID) -> None:
        super().__init__(f"order {order_id} already has this Idempotency-Key")
        self.order_id = order_id


class CommitUnanswered(Exception):
    """The COMMIT was sent and no answer said how it ended."""


class OrderWriter:
    """The order's transaction, on the pool, the promo service and a time budget."""

    def __init__(self, pool: asyncpg.Pool, promos: PromoService | None, *, timeout_seconds: float) -> None:
        self.pool = pool
        self.promos = promos
        self.timeout = timeout_seconds

    async def write(
        self,
        draft: Callable[[], NewOrder],
        *,
        quote: Any,
        customer_key: str | None,
        start_by_ms: int,
        clock: Callable[[], int],
        committing: Callable[[str], None],
    ) -> tuple[NewOrder, Inserted]:
        """The order ``draft()`` makes (a fresh one per try), written once.

        ``start_by_ms``: no try starts after it (``clock``'s time), so no commit can land
        after a recovery may have judged the order absent (settlement.commit_fence_ms).
        ``committing(order_id)`` is called just before the COMMIT is sent: from then on
        the order may be committed whatever is raised."""
        clashes = deadlocks = 0
        while True:
            if clock() > start_by_ms:
                raise TimeoutError("the checkout took too long to reach PostgreSQL")
            order = draft()
            try:
                return order, await self.transaction(order, quote, customer_key, clock=clock, committing=committing)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name == "orders_cart_idempotency" and order.idempotency_key:
                    found = await store.order_id_by_idempotency_key(self.pool, order.cart_id, order.idempotency_key)
                    if found is not None:
                        raise ExistingOrder(found) from None
                clashes += 1
                if exc.constraint_name not in _CODE_CONSTRAINTS or clashes >= CODE_DRAWS:
                    raise
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                deadlocks += 1
                if deadlocks > DEADLOCK_RETRIES:
                    raise

    async def transaction(
        self,
        order: NewOrder,
        quote: Any,
        customer_key: str | None,
        *,
        clock: Callable[[], int],
        committing: Callable[[str], None],
    ) -> Inserted:
        """One try. An error before the COMMIT is sent is raised as it is (nothing
        committed); one while or after it is CommitUnanswered, and the connection is
        closed, so a commit still in flight on it ends (outcome.py)."""
        sent = False
        try:
            async with asyncio.timeout(self.timeout):
                async with self.pool.acquire(timeout=self.timeout) as conn:
                    try:
                        async with conn.transaction():
                            inserted = await store.insert_order(conn, order, now_ms=clock())
                            if quote is not None and self.promos is not None:
                                assert customer_key is not None  # a quote comes with its customer's key
                                await self.promos.redeem(conn, quote, order.id, customer_key)
                            committing(str(order.id))
                            sent = True  # leaving the block sends the COMMIT
                    except BaseException:
                        if sent and not conn.is_closed():
                            conn.terminate()
                        raise
            return inserted
        except Exception as exc:
            if sent:
                raise CommitUnanswered(repr(exc)) from exc
            raise
