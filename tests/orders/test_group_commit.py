"""Group commit (service/orders/group_commit.py): the orders of a tier that arrive while its
write is in flight are written together by the next write, and each order still ends as if
written alone: committed and answered, refused only when it truly finds no seat, never sent
when its checkout stopped waiting, or unanswered (and then all of the write's orders are
committed or none). Real PostgreSQL, real concurrency, faults through tests/pg_fault_proxy.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import asyncpg
import pytest

from service.orders import store
from service.orders.commits import CommitUnanswered
from service.orders.outcome import Outcome, order_outcome
from service.orders.store import NewOrder, TierGuardFailed
from service.orders.writer import OrderWriter
from tests.orders.test_tier_gates import new_tier, order_of

pytestmark = pytest.mark.usefixtures("clean_state")


class Watch:
    """What the checkout's parts would be told: which orders may have committed."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def committing(self, order_id: str) -> None:
        self.calls.append(("committing", order_id))

    def refused(self, order_id: str) -> None:
        self.calls.append(("refused", order_id))

    def may_have_committed(self, order_id: str) -> bool:
        said = [call for call, oid in self.calls if oid == order_id]
        return bool(said) and said[-1] == "committing"


def clock() -> int:
    return int(time.time() * 1000)


def writes_seen(monkeypatch, *, first_write_pause: float = 0.05) -> list[int]:
    """How many orders each write carried, in order. The first write pauses after its
    statement, so the orders started meanwhile wait for it in their lane, as a hot tier's do."""
    sizes: list[int] = []
    real = store.insert_orders  # what insert_order calls too

    async def insert_orders(conn, orders, **kwargs):
        sizes.append(len(orders))
        inserted = await real(conn, orders, **kwargs)
        if len(sizes) == 1:
            await asyncio.sleep(first_write_pause)
        return inserted

    monkeypatch.setattr(store, "insert_orders", insert_orders)
    return sizes


async def write_all(writer: OrderWriter, orders: list[NewOrder], watch: Watch) -> list[object]:
    """Every order written through the writer at once (its first started first); each one's
    answer or exception."""

    async def write(order: NewOrder, delay: float) -> object:
        await asyncio.sleep(delay)
        _, inserted = await writer.write(
            lambda: order, quote=None, customer_key=None, start_by_ms=clock() + 60_000, clock=clock, watch=watch
        )
        return inserted

    return await asyncio.gather(
        *(write(order, 0 if n == 0 else 0.01) for n, order in enumerate(orders)), return_exceptions=True
    )


async def test_a_hot_tiers_orders_are_written_together_each_with_its_own_version(db_pool, monkeypatch):
    event_id = uuid.uuid4()
    tier = await new_tier(db_pool, event_id, total=100)
    sizes = writes_seen(monkeypatch, first_write_pause=0.2)
    orders = [order_of(event_id, tier) for _ in range(30)]
    watch = Watch()

    answers = await write_all(OrderWriter(db_pool, None, timeout_seconds=10), orders, watch)

    assert not [a for a in answers if isinstance(a, BaseException)], answers
    # the rest waited for the first write, then went together (a busy machine may split them)
    assert sizes[0] == 1 and max(sizes) > 1 and len(sizes) < 30 and sum(sizes) == 30, sizes
    versions = sorted(change.version for answer in answers for change in answer.sold)
    assert versions == list(range(1, 31))  # one change of quantity_sold per order, as if alone
    row = await db_pool.fetchrow("SELECT quantity_sold, sold_version FROM ticket_tiers WHERE id = $1", tier)
    assert (row["quantity_sold"], row["sold_version"]) == (30, 30)
    assert await db_pool.fetchval("SELECT count(*) FROM tickets WHERE tier_id = $1", tier) == 30
    assert await db_pool.fetchval("SELECT count(*) FROM order_events WHERE kind = 'order.created'") == 30
    assert all(watch.may_have_committed(str(order.id)) for order in orders)


async def test_a_refused_write_of_several_is_tried_order_by_order_so_only_orders_without_seats_are_refused(
    db_pool, monkeypatch
):
    """5 seats, 12 buyers: the write of the 11 who waited is refused by the tier guard (4
    seats left), and tried again order by order: 4 more are sold, 7 refused."""
    event_id = uuid.uuid4()
    tier = await new_tier(db_pool, event_id, total=5)
    sizes = writes_seen(monkeypatch, first_write_pause=0.2)
    orders = [order_of(event_id, tier) for _ in range(12)]
    watch = Watch()

    answers = await write_all(OrderWriter(db_pool, None, timeout_seconds=10), orders, watch)

    assert max(sizes) > 4, sizes  # a write of more orders than seats left was tried (and refused)
    refused = [a for a in answers if isinstance(a, TierGuardFailed)]
    assert len(refused) == 7 and len([a for a in answers if not isinstance(a, BaseException)]) == 5, answers
    assert await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", tier) == 5
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 5
    for order, answer in zip(orders, answers, strict=True):
        assert watch.may_have_committed(str(order.id)) == (not isinstance(answer, BaseException))


async def test_a_checkout_that_stops_waiting_before_its_write_is_never_written(db_pool, monkeypatch):
    event_id = uuid.uuid4()
    tier = await new_tier(db_pool, event_id)
    writes_seen(monkeypatch, first_write_pause=0.2)
    writer = OrderWriter(db_pool, None, timeout_seconds=10)
    first, gone, kept = (order_of(event_id, tier) for _ in range(3))
    watch = Watch()

    async def write(order: NewOrder) -> None:
        await writer.write(
            lambda: order, quote=None, customer_key=None, start_by_ms=clock() + 60_000, clock=clock, watch=watch
        )

    tasks = [asyncio.create_task(write(first))]
    await asyncio.sleep(0.05)  # the first write is in flight
    tasks += [asyncio.create_task(write(gone)), asyncio.create_task(write(kept))]
    await asyncio.sleep(0.05)  # both wait in the lane
    tasks[1].cancel()  # its buyer went away
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(results[1], asyncio.CancelledError) and results[0] is None and results[2] is None
    written = {r["id"] for r in await db_pool.fetch("SELECT id FROM orders")}
    assert written == {first.id, kept.id}
    assert not watch.may_have_committed(str(gone.id)) and ("committing", str(gone.id)) not in watch.calls
    assert not writer.group._lanes  # the lane went with its last write


async def test_an_order_past_its_start_by_time_is_not_sent_with_the_others(db_pool, monkeypatch):
    event_id = uuid.uuid4()
    tier = await new_tier(db_pool, event_id)
    writes_seen(monkeypatch, first_write_pause=0.2)
    writer = OrderWriter(db_pool, None, timeout_seconds=10)
    first, late, on_time = (order_of(event_id, tier) for _ in range(3))
    watch = Watch()
    now = clock()

    async def write(order: NewOrder, start_by_ms: int) -> None:
        await writer.write(
            lambda: order, quote=None, customer_key=None, start_by_ms=start_by_ms, clock=clock, watch=watch
        )

    tasks = [asyncio.create_task(write(first, now + 60_000))]
    await asyncio.sleep(0.05)
    tasks += [asyncio.create_task(write(late, now + 100)), asyncio.create_task(write(on_time, now + 60_000))]
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(results[1], TimeoutError) and results[0] is None and results[2] is None
    assert {r["id"] for r in await db_pool.fetch("SELECT id FROM orders")} == {first.id, on_time.id}
    assert not watch.may_have_committed(str(late.id))


@pytest.mark.parametrize("fault", ["drop", "cut"])
async def test_a_write_of_several_whose_commit_answer_is_lost_leaves_each_order_to_its_look_up(
    db_pool, pg_fault_proxy, monkeypatch, fault
):
    """The Sync that commits the write of several is the COMMIT: its answer dropped (it
    committed) or the connection cut before it (it did not). Every order of the write is
    CommitUnanswered, and each one's look-up finds what really happened, the same for all."""
    event_id = uuid.uuid4()
    tier = await new_tier(db_pool, event_id)
    real_one = store.insert_order
    calls = Counter()

    async def first_then_fault(conn, order, **kwargs):
        calls["one"] += 1
        inserted = await real_one(conn, order, **kwargs)
        if calls["one"] == 1:
            (pg_fault_proxy.drop_commit_answer if fault == "drop" else pg_fault_proxy.cut_before_commit)(times=1)
            await asyncio.sleep(0.1)  # the others wait in the lane meanwhile
        return inserted

    monkeypatch.setattr(store, "insert_order", first_then_fault)
    pool = await asyncpg.create_pool(pg_fault_proxy.database_url, min_size=1, max_size=4)
    try:
        orders = [order_of(event_id, tier) for _ in range(6)]
        watch = Watch()
        answers = await write_all(OrderWriter(pool, None, timeout_seconds=5), orders, watch)
    finally:
        await pool.close()

    assert not isinstance(answers[0], BaseException)
    assert all(isinstance(a, CommitUnanswered) for a in answers[1:]), answers
    assert all(watch.may_have_committed(str(order.id)) for order in orders)  # their parts stay in checkout
    outcomes = {await order_outcome(db_pool, order.id, budget_seconds=5, statement_timeout=2) for order in orders[1:]}
    assert outcomes == {Outcome.COMMITTED if fault == "drop" else Outcome.ABSENT}
    sold = await db_pool.fetchval("SELECT quantity_sold FROM ticket_tiers WHERE id = $1", tier)
    assert sold == (6 if fault == "drop" else 1)


async def test_a_lane_whose_last_waiter_left_before_its_write_began_ends_quietly(db_pool, monkeypatch):
    """The first write ends and hands the lane to the next write; the one order waiting for it
    is cancelled in that same step (its cancel runs before the next write's first step), so
    the next write finds nobody and must simply end."""
    event_id = uuid.uuid4()
    tier = await new_tier(db_pool, event_id)
    writes_seen(monkeypatch, first_write_pause=0.1)
    writer = OrderWriter(db_pool, None, timeout_seconds=10)
    first, gone = order_of(event_id, tier), order_of(event_id, tier)
    tasks: list[asyncio.Task] = []
    runs: list[asyncio.Task] = []
    real_next = writer.group._next

    def cancel_then_hand_over(key, lane):
        if not runs:
            tasks[1].cancel()
        real_next(key, lane)
        runs.extend(writer.group._runs)

    monkeypatch.setattr(writer.group, "_next", cancel_then_hand_over)

    async def write(order: NewOrder) -> None:
        await writer.write(
            lambda: order, quote=None, customer_key=None, start_by_ms=clock() + 60_000, clock=clock, watch=Watch()
        )

    tasks.append(asyncio.create_task(write(first)))
    await asyncio.sleep(0.03)
    tasks.append(asyncio.create_task(write(gone)))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert runs  # the next write was started, with the waiter still in the lane
    await asyncio.gather(*runs)  # and it ended without an error

    assert results[0] is None and isinstance(results[1], asyncio.CancelledError)
    assert {r["id"] for r in await db_pool.fetch("SELECT id FROM orders")} == {first.id}
    assert not writer.group._lanes
