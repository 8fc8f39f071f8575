"""Step 2 of the checkout saga: the order's one PostgreSQL transaction.

It writes the order, its items and tickets, takes the seats (guarded: store.insert_order),
records the order's events in the outbox (in the same statement: service/events) and counts
the promo use. Without a promo use that is one statement committing on its own (no BEGIN,
no COMMIT: a hot tier's row lock is never held across a round trip), sent with the other
orders of its tiers that are waiting (group commit: group_commit.py); with one, a
transaction. What the checkout must know is how it ended, and that is the whole interface:
- it returns: committed, and answered;
- it raises an error of PostgreSQL or the network: certainly not committed (the COMMIT was
  never sent, or PostgreSQL refused the one statement itself);
- ExistingOrder: the cart's Idempotency-Key already names a committed order;
- CommitUnanswered: the COMMIT was sent and no answer said how it ended. The connection is
  closed first, so a commit still in flight on it ends, and the order's outcome can be
  looked up with certainty (outcome.py).

A clash on a unique code draws the order again (fresh codes); a deadlock tries again.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from service.orders import store
from service.orders.commits import CommitUnanswered, CommitWatch
from service.orders.group_commit import BatchRefused, GroupCommit
from service.orders.store import Inserted, NewOrder

if TYPE_CHECKING:
    from service.promo.service import PromoService

__all__ = [
    "CODE_DRAWS",
    "DEADLOCK_RETRIES",
    "CommitUnanswered",
    "CommitWatch",
    "ExistingOrder",
    "OrderWriter",
    "TierGates",
]

CODE_DRAWS = 5  # fresh codes after a clash on a unique code
DEADLOCK_RETRIES = 2
_CODE_CONSTRAINTS = {"orders_number_key", "orders_payment_code_key", "tickets_code_key", "tickets_pkey"}


class ExistingOrder(Exception):
    """The transaction met an order that already exists (by the idempotency key)."""

    def __init__(self, order_id: uuid.UUID) -> None:
        super().__init__(f"order {order_id} already has this Idempotency-Key")
        self.order_id = order_id


class TierGates:
    """One order write per tier at a time in this process.

    Every write of a tier waits for its row lock in PostgreSQL anyway; letting this process's
    other checkouts of the tier wait here instead keeps them off the pool and out of the
    row's lock queue, where each hand-over wakes a backend on cores the API shares. A hot
    tier then has one statement per API process in PostgreSQL: measured straight on the
    writer (64 buyers, one tier, a loaded 2-core machine), 720-770 orders/s without, 770-1,020
    with. Gates are taken in tier order (no deadlock between two orders of several tiers) and
    forgotten when no write holds or waits for them.
    """

    def __init__(self) -> None:
        self._gates: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def holding(self, tier_ids: Iterable[uuid.UUID]) -> AsyncIterator[None]:
        gates = []
        for tier_id in sorted(set(tier_ids)):
            gate = self._gates.get(tier_id)
            if gate is None:
                gate = self._gates[tier_id] = asyncio.Lock()
            gates.append(gate)
        async with AsyncExitStack() as stack:
            for gate in gates:
                await stack.enter_async_context(gate)
            yield


class OrderWriter:
    """The order's transaction, on the pool, the promo service and a time budget."""

    def __init__(self, pool: asyncpg.Pool, promos: PromoService | None, *, timeout_seconds: float) -> None:
        self.pool = pool
        self.promos = promos
        self.timeout = timeout_seconds
        self.gates = TierGates()
        self.group = GroupCommit(pool, self.gates, timeout_seconds=timeout_seconds)

    async def write(
        self,
        draft: Callable[[], NewOrder],
        *,
        quote: Any,
        customer_key: str | None,
        start_by_ms: int,
        clock: Callable[[], int],
        watch: CommitWatch,
    ) -> tuple[NewOrder, Inserted]:
        """The order ``draft()`` makes (a fresh one per try), written once.

        ``start_by_ms``: no try starts after it (``clock``'s time), so no commit can land
        after a recovery may have judged the order absent (settlement.commit_fence_ms).
        ``watch.committing(order_id)`` is called before the COMMIT is sent (for a write of
        group commit, when the write takes the order): from then on the order may be
        committed whatever is raised, unless ``watch.refused(order_id)`` follows (PostgreSQL
        refused the statement itself, or the write never sent it).

        Without a promo use, the order goes through group commit (group_commit.py): written
        with the other orders of its tiers that wait for the same write. When PostgreSQL
        refuses such a write of several orders, it is tried again alone, which answers for
        this order only."""
        clashes = deadlocks = 0
        alone = False
        while True:
            if clock() > start_by_ms:
                raise TimeoutError("the checkout took too long to reach PostgreSQL")
            order = draft()
            try:
                inserted = await self.transaction(
                    order, quote, customer_key, clock=clock, watch=watch, start_by_ms=start_by_ms, alone=alone
                )
                return order, inserted
            except BatchRefused:
                alone = True  # nothing of that write was written
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
        watch: CommitWatch,
        start_by_ms: float = float("inf"),
        alone: bool = False,
    ) -> Inserted:
        """One try. An error before the COMMIT is sent is raised as it is (nothing
        committed); one while or after it is CommitUnanswered, and the connection is
        closed, so a commit still in flight on it ends (outcome.py).

        Without a promo use to count, the order is one statement that commits on its own:
        sending it is sending the COMMIT, and a hot tier's row lock is held only while
        PostgreSQL runs it, never across a round trip to this process. It is written by
        group commit (group_commit.py): with the orders of its tiers that wait for the same
        write, unless ``alone``. An error PostgreSQL answers for that statement still means
        nothing was written (``refused_by_postgres``). The order's tiers' gates
        (``TierGates``) are held for the try, inside its time budget.
        """
        if quote is None or self.promos is None:
            return await self.group.write(order, watch=watch, start_by_ms=start_by_ms, clock=clock, alone=alone)
        sent = False
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.gates.holding(i.tier_id for i in order.items),
                self.pool.acquire(timeout=self.timeout) as conn,
            ):
                try:
                    async with conn.transaction():
                        inserted = await store.insert_order(conn, order, now_ms=clock())
                        assert customer_key is not None  # a quote has its key
                        await self.promos.redeem(conn, quote, order.id, customer_key)
                        watch.committing(str(order.id))
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
