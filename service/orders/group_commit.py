"""Group commit: a hot tier's orders written many to a statement's round trip.

Every order of a tier changes the tier's row, so PostgreSQL writes a tier's orders one at a
time, each holding the row lock from its statement to its commit. When thousands of buyers
check out the same tier, that queue is the limit. Here the orders without a promo use (one
statement each, writer.py) that find their tiers' write in flight wait for it in a *lane*
(one per set of tiers), and when it ends, every order waiting in the lane is written by the
next write together: their statements sent at once (store.insert_orders), committed together
by one Sync. One row lock taken once, one round trip, one commit for many orders.

Each order keeps what makes its outcome knowable (outcome.py): its own statement, advisory
lock, sold version and guard. What changes is that the orders of a write commit or fail
together, so:
- the write commits: each order is answered as if written alone;
- PostgreSQL refuses the write (a tier guard, a clash of codes: nothing of it was written):
  a write of one order raises the refusal itself; a write of several raises BatchRefused to
  each, and each order is then tried alone (writer.py), so only the orders that truly find
  no seat are refused, one by one;
- the answer is lost after sending: each order gets CommitUnanswered, and each checkout
  looks its order up, as after its own lost COMMIT (the write's orders all committed or none).

An order is *taken* by a write (and ``watch.committing`` called) in the same step that it
leaves its lane, so a checkout that stops waiting (its time budget, a cancel) knows: never
taken, never sent (TimeoutError, certainly not committed); taken, it may commit, and the
order's outcome is the write's. No write starts a try of an order past its ``start_by_ms``
(settlement.commit_fence_ms).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from service.metrics import ORDER_WRITES
from service.orders import store
from service.orders.commits import CommitUnanswered, CommitWatch, refused_by_postgres
from service.orders.store import Inserted, NewOrder

if TYPE_CHECKING:
    from service.orders.writer import TierGates

__all__ = ["MAX_ORDERS_PER_WRITE", "BatchRefused", "GroupCommit"]

MAX_ORDERS_PER_WRITE = 64  # more waiting orders wait for the next write


class BatchRefused(Exception):
    """PostgreSQL refused a write of several orders: none of them was written, and which
    one it refused for is not known. The order is tried again alone."""


@dataclass(eq=False)
class _Order:
    order: NewOrder
    watch: CommitWatch
    start_by_ms: float
    clock: Callable[[], int]
    answer: asyncio.Future[Inserted]
    taken: bool = False


@dataclass(eq=False)
class _Lane:
    """The orders of one set of tiers that wait for that set's write in flight."""

    waiting: list[_Order] = field(default_factory=list)


class GroupCommit:
    """Lanes of orders without a promo use, by their set of tiers; see the module."""

    def __init__(self, pool: asyncpg.Pool, gates: TierGates, *, timeout_seconds: float) -> None:
        self.pool = pool
        self.gates = gates
        self.timeout = timeout_seconds
        self._lanes: dict[tuple[uuid.UUID, ...], _Lane] = {}
        self._runs: set[asyncio.Task[None]] = set()

    async def write(
        self,
        order: NewOrder,
        *,
        watch: CommitWatch,
        start_by_ms: float,
        clock: Callable[[], int],
        alone: bool = False,
    ) -> Inserted:
        """Write ``order`` in a write of its own at once if its lane is free (or ``alone``:
        then past the lane, behind only the tiers' gates), else with the lane's next write.
        Raises as writer.OrderWriter.transaction does, plus BatchRefused."""
        entry = _Order(order, watch, start_by_ms, clock, asyncio.get_running_loop().create_future())
        if alone:
            self._take([entry])
            await self._write([entry])
            return entry.answer.result()
        key = tuple(item.tier_id for item in order.items)  # sorted by tier id (NewOrder)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
            self._take([entry])
            try:
                await self._write([entry])
            finally:
                self._next(key, lane)
            return entry.answer.result()
        lane.waiting.append(entry)
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(entry.answer)
        except TimeoutError:
            if not entry.taken:
                lane.waiting.remove(entry)
                raise  # never sent
        except asyncio.CancelledError:
            if not entry.taken:
                lane.waiting.remove(entry)
            raise  # taken: the order's outcome is the write's, and its recovery finds it
        return await entry.answer  # taken: the write's own time budget bounds the wait

    def _take(self, entries: list[_Order]) -> None:
        for entry in entries:
            entry.taken = True
            entry.watch.committing(str(entry.order.id))

    def _next(self, key: tuple[uuid.UUID, ...], lane: _Lane) -> None:
        """The lane's write ended: the next one takes every order waiting, or the lane goes."""
        if not lane.waiting:
            del self._lanes[key]
            return
        run = asyncio.create_task(self._run(key, lane))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    async def _run(self, key: tuple[uuid.UUID, ...], lane: _Lane) -> None:
        try:
            entries = lane.waiting[:MAX_ORDERS_PER_WRITE]
            del lane.waiting[:MAX_ORDERS_PER_WRITE]
            self._take(entries)
            await self._write(entries)
        finally:
            self._next(key, lane)

    async def _write(self, entries: list[_Order]) -> None:
        """One write of the taken ``entries``; every entry's answer is set when it returns.
        None at all when every order waiting left the lane between the hand-over and now."""
        if not entries:
            return
        clock = entries[0].clock
        now = clock()
        late = [e for e in entries if now > e.start_by_ms]
        for entry in late:
            entry.watch.refused(str(entry.order.id))
            entry.answer.set_exception(TimeoutError("the checkout took too long to reach PostgreSQL"))
            entry.answer.exception()  # retrieved: its checkout may have stopped waiting
        entries = [e for e in entries if now <= e.start_by_ms]
        if not entries:
            return
        ORDER_WRITES.labels(orders=_size_label(len(entries))).inc()
        sent = False
        try:
            async with (
                asyncio.timeout(self.timeout),
                self.gates.holding(item.tier_id for item in entries[0].order.items),
                self.pool.acquire(timeout=self.timeout) as conn,
            ):
                try:
                    sent = True  # each statement commits at the one Sync after them all
                    orders = [e.order for e in entries]
                    inserted = (
                        [await store.insert_order(conn, orders[0], now_ms=clock())]
                        if len(orders) == 1
                        else await store.insert_orders(conn, orders, now_ms=clock())
                    )
                except BaseException as exc:
                    if refused_by_postgres(exc):
                        sent = False
                    elif not conn.is_closed():
                        conn.terminate()  # a commit still in flight on it ends (outcome.py)
                    raise
        except BaseException as exc:
            self._fail(entries, exc, sent)
            if not isinstance(exc, Exception):
                raise
            return
        for entry, answer in zip(entries, inserted, strict=True):
            entry.answer.set_result(answer)

    @staticmethod
    def _fail(entries: list[_Order], exc: BaseException, sent: bool) -> None:
        for entry in entries:
            if sent:
                unanswered = CommitUnanswered(repr(exc))
                unanswered.__cause__ = exc
                entry.answer.set_exception(unanswered)
            else:
                entry.watch.refused(str(entry.order.id))
                if len(entries) > 1 and refused_by_postgres(exc):
                    entry.answer.set_exception(BatchRefused(repr(exc)))
                elif isinstance(exc, Exception):
                    entry.answer.set_exception(exc)
                else:
                    entry.answer.set_exception(ConnectionError(f"the write was stopped before it was sent: {exc!r}"))
            entry.answer.exception()  # retrieved: its checkout may have stopped waiting


def _size_label(orders: int) -> str:
    """A few buckets, so the label's values stay few."""
    for bound in (1, 2, 4, 8, 16, 32):
        if orders <= bound:
            return str(bound)
    return str(MAX_ORDERS_PER_WRITE)
