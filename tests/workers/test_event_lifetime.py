"""Events leave Redis and the worker's rounds when they are finished; the sweep's unfinished
work rotates; the held recount works at any size, exact while carts change under it.
Real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
import types
import uuid

import msgspec
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from service.inventory.store import TierRow, fetch_tier
from tests.workers.conftest import TTL_MS, counters, hold, make_tier, now_ms
from workers import sweep as sweep_module
from workers.active_events import RETIRE_GRACE_MS, indexed_events, retire_if_finished
from workers.reconcile import reconcile_inventory, selling_events
from workers.sweep import sweep_expired_parts


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def after_grace() -> int:
    """A sweep's clock past the grace of every tier load so far."""
    return now_ms() + RETIRE_GRACE_MS + 1


async def change_tier(
    services, row: TierRow, *, ended: bool | None = None, active: bool | None = None, load: bool = True
) -> TierRow:
    """An admin's change of the sale window or the active flag (the definition's version
    bumped), installed in Redis as the admin API does."""
    end = {True: "now() - interval '1 hour'", False: "now() + interval '1 hour'", None: "sales_end"}[ended]
    await services.pool.execute(
        f"UPDATE ticket_tiers SET sales_end = {end}, active = coalesce($2, active), version = version + 1"
        " WHERE id = $1",
        row.id,
        active,
    )
    row = await fetch_tier(services.pool, row.id)
    if load:
        await services.catalog.install(row)
    return row


async def event_keys(services, event_id: str) -> int:
    ev = services.keys.event(event_id)
    return await services.redis.exists(ev.inventory, ev.carts, ev.expiries, ev.checkouts)


async def test_a_finished_event_leaves_redis_and_the_index_and_reconcile_does_not_bring_it_back(services):
    row = await change_tier(services, await make_tier(services, load=False), ended=True)
    event_id = str(row.event_id)
    retired_before = metric("tc_events_retired_total")

    assert (await sweep_expired_parts(services)).retired == 0  # loaded moments ago: kept
    stats = await sweep_expired_parts(services, now_ms=after_grace())

    assert stats.retired == 1 and metric("tc_events_retired_total") == retired_before + 1
    assert await event_keys(services, event_id) == 0
    assert event_id not in await indexed_events(services)
    assert await services.scripts.tier_place(str(row.id)) is None  # the tier -> event map forgets it

    stats = await reconcile_inventory(services)

    assert (stats.events, stats.loaded) == (0, 0)
    assert await event_keys(services, event_id) == 0
    assert event_id not in await selling_events(services.pool)


async def test_a_late_read_reloads_a_retired_event_cleanly_and_the_sweep_retires_it_again(services):
    row = await change_tier(services, await make_tier(services, total=10, sold=3, load=False), ended=True)
    event_id = str(row.event_id)
    await sweep_expired_parts(services, now_ms=after_grace())
    assert await event_keys(services, event_id) == 0

    refused, *_ = await services.scripts.reserve(
        event_id=event_id,
        cart_id="late",
        tier_id=str(row.id),
        quantity=1,
        mode="add",
        now_ms=now_ms(),
        ttl_ms=TTL_MS,
        max_lines=20,
        sweep_limit=0,
        request_id="",
        meta_fields={},
        meta_ttl_ms=1,
    )
    assert refused.result == "not-loaded"
    await services.catalog.load(str(row.id))  # what the API does then
    again, *_ = await services.scripts.reserve(
        event_id=event_id,
        cart_id="late",
        tier_id=str(row.id),
        quantity=1,
        mode="add",
        now_ms=now_ms(),
        ttl_ms=TTL_MS,
        max_lines=20,
        sweep_limit=0,
        request_id="",
        meta_fields={},
        meta_ttl_ms=1,
    )

    assert again.result == "sale-closed"
    tier = await counters(services, row)
    assert (tier.total, tier.sold, tier.held) == (10, 3, 0)
    assert event_id in await indexed_events(services)
    assert (await sweep_expired_parts(services, now_ms=after_grace())).retired == 1


async def test_an_admin_reopening_a_retired_event_sells_it_again(services):
    row = await change_tier(services, await make_tier(services, total=10, sold=2, load=False), ended=True)
    await sweep_expired_parts(services, now_ms=after_grace())

    row = await change_tier(services, row, ended=False)
    await hold(services, row, 3)

    tier = await counters(services, row)
    assert (tier.sold, tier.held, tier.available) == (2, 3, 5)
    assert (await sweep_expired_parts(services, now_ms=after_grace())).retired == 0


async def test_an_event_with_a_part_or_a_tier_still_on_sale_is_kept_and_an_inactive_one_goes(services):
    with_part = await make_tier(services)
    await hold(services, with_part, 1)
    with_part = await change_tier(services, with_part, ended=True)
    ended = await change_tier(services, await make_tier(services, load=False), ended=True)
    still_selling = await make_tier(services, event_id=str(ended.event_id))
    inactive = await change_tier(services, await make_tier(services, load=False), active=False)

    stats = await sweep_expired_parts(services, now_ms=after_grace())

    assert stats.retired == 1
    assert await event_keys(services, str(inactive.event_id)) == 0
    for kept in (with_part, still_selling):
        assert (await counters(services, kept)) is not None
        assert str(kept.event_id) in await indexed_events(services)


async def test_a_tier_load_between_the_retirement_and_the_index_update_keeps_the_event_indexed(services, monkeypatch):
    row = await change_tier(services, await make_tier(services, load=False), ended=True)
    reopened = await change_tier(services, row, ended=False, load=False)
    real = services.scripts.retire_event

    async def retire_then_an_admin_reopens(**kwargs):
        reply = await real(**kwargs)
        await services.catalog.install(reopened)  # the tier load and its ZADD land here
        return reply

    monkeypatch.setattr(services.scripts, "retire_event", retire_then_an_admin_reopens)

    assert not await retire_if_finished(services, str(row.event_id), after_grace())

    assert str(row.event_id) in await indexed_events(services)
    assert (await counters(services, reopened)) is not None


async def test_a_sweep_out_of_time_starts_the_next_run_where_it_stopped(services, monkeypatch):
    rows = [await make_tier(services, total=100) for _ in range(6)]
    order = sorted(str(row.event_id) for row in rows)
    for row in rows:
        await hold(services, row, 1, at_ms=now_ms() - 2 * TTL_MS)
    clock = iter(range(10**6))  # each look at the clock is a second later
    monkeypatch.setattr(sweep_module, "time", types.SimpleNamespace(time=time.time, monotonic=lambda: next(clock)))
    calls: list[str] = []
    real = services.scripts.sweep

    async def sweep(*, event_id, now_ms, limit):
        calls.append(event_id)
        return await real(event_id=event_id, now_ms=now_ms, limit=limit)

    monkeypatch.setattr(services.scripts, "sweep", sweep)
    runs, events = metric("tc_sweep_unfinished_runs_total"), metric("tc_sweep_unfinished_events_total")

    first = await sweep_expired_parts(services, budget_seconds=3.5, batch=1, batches_per_turn=1)
    first_calls, calls[:] = list(calls), []
    second = await sweep_expired_parts(services, budget_seconds=3.5, batch=1, batches_per_turn=1)

    assert (first.unfinished, second.unfinished) == (3, 3)
    assert first_calls == order[:3] and calls == order[3:]
    assert metric("tc_sweep_unfinished_runs_total") == runs + 2
    assert metric("tc_sweep_unfinished_events_total") == events + 6
    await sweep_expired_parts(services, budget_seconds=3.5, batch=1, batches_per_turn=1)
    assert calls[3:] == order[:3]  # the third run goes back to the start


async def seats_in_parts(services, event_id: str) -> dict[str, int]:
    seats: dict[str, int] = {}
    for raw in (await services.redis.hgetall(services.keys.event(event_id).carts)).values():
        for tier_id, quantity in msgspec.json.decode(raw)["l"].items():
            seats[tier_id] = seats.get(tier_id, 0) + quantity
    return seats


async def test_a_chunked_recount_racing_buyers_and_checkouts_corrects_exactly_the_drift(services, monkeypatch):
    """600 parts on two tiers, a recount of 20 parts a call, and buyers adding, setting,
    removing, clearing, merging and checking out all the while: held ends exact, and the
    drift found is exactly the drift made by hand."""
    first = await make_tier(services, total=100_000)
    second = await make_tier(services, event_id=str(first.event_id), total=100_000)
    event_id, rows = str(first.event_id), [first, second]
    carts = [await hold(services, rows[i % 2], 1 + i % 3) for i in range(600)]
    inv = services.keys.event(event_id).inventory
    await services.redis.hincrby(inv, f"{first.id}:held", 7)
    rng = random.Random(5)
    done = asyncio.Event()
    calls, changes = [], []
    real_recount = services.scripts.recount_held

    async def recount_call(**kwargs):
        calls.append(kwargs["cursor"])
        return await real_recount(**kwargs)

    monkeypatch.setattr(services.scripts, "recount_held", recount_call)

    async def buyer() -> None:
        scripts, now = services.scripts, now_ms()
        while not done.is_set():
            changes.append(len(calls))  # how far the recount was when this change ran
            cart, other = rng.sample(carts, 2)
            row = rng.choice(rows)
            match rng.randrange(6):
                case 0 | 1:  # refused when the line is at its limit or the part in checkout: fine
                    await scripts.reserve(
                        event_id=event_id,
                        cart_id=cart,
                        tier_id=str(row.id),
                        quantity=rng.randint(0, 3),
                        mode=rng.choice(["add", "set"]),
                        now_ms=now,
                        ttl_ms=TTL_MS,
                        max_lines=20,
                        sweep_limit=0,
                        request_id="",
                        meta_fields={},
                        meta_ttl_ms=TTL_MS,
                    )
                case 2:
                    await scripts.remove_line(event_id=event_id, cart_id=cart, tier_id=str(row.id), now_ms=now)
                case 3:
                    await scripts.clear_part(event_id=event_id, cart_id=cart)
                case 4:
                    await scripts.merge_part(
                        event_id=event_id,
                        guest_cart_id=cart,
                        user_cart_id=other,
                        now_ms=now,
                        ttl_ms=TTL_MS,
                        max_lines=20,
                    )
                case 5:
                    order = str(uuid.uuid4())
                    begun = await scripts.checkout_begin(
                        cart_id=cart,
                        event_ids=[event_id],
                        order_id=order,
                        replace="",
                        now_ms=now,
                        deadline_ms=now + TTL_MS,
                    )
                    if begun[event_id].result == "ok":
                        await scripts.checkout_apply(cart_id=cart, order_id=order, changes={event_id: []})

    async def reconciler():
        try:
            return await reconcile_inventory(services, max_parts=10, recount_chunk=20)
        finally:
            done.set()

    stats, *_ = await asyncio.gather(reconciler(), *(buyer() for _ in range(4)))

    assert (stats.recounted_in_chunks, stats.not_recounted) == (1, 0)
    assert len(calls) > 20  # the recount really went in chunks, with changes between them
    assert len({at for at in changes if 0 < at < len(calls)}) > 10
    assert (stats.held_drift, stats.held_drift_seats) == (1, 7)
    seats = await seats_in_parts(services, event_id)
    for row in rows:
        assert (await counters(services, row)).held == seats.get(str(row.id), 0)


async def test_a_recount_taken_over_by_another_is_reported_not_recounted(services, monkeypatch):
    row = await make_tier(services, total=10_000)
    for _ in range(600):
        await hold(services, row, 1)
    real = services.scripts.recount_held

    async def another_worker_begins_meanwhile(**kwargs):
        reply = await real(**kwargs)
        if kwargs["cursor"] == "0":
            await real(**{**kwargs, "recount_id": "another"})
        return reply

    monkeypatch.setattr(services.scripts, "recount_held", another_worker_begins_meanwhile)
    before = metric("tc_reconcile_not_recounted_total")

    with capture_logs() as logs:
        stats = await reconcile_inventory(services, max_parts=10, recount_chunk=20)

    assert (stats.not_recounted, stats.recounted_in_chunks) == (1, 0)
    assert metric("tc_reconcile_not_recounted_total") == before + 1
    assert [line["event_id"] for line in logs if line["event"] == "reconcile could not recount held"] == [
        str(row.event_id)
    ]
    assert (await counters(services, row)).held == 600


async def test_selling_events_are_those_with_an_active_tier_whose_sale_has_not_ended(services):
    on_sale = await make_tier(services, load=False)
    ended = await change_tier(services, await make_tier(services, load=False), ended=True, load=False)
    ends_later = await change_tier(services, await make_tier(services, load=False), ended=False, load=False)
    inactive = await make_tier(services, active=False, load=False)
    await make_tier(services, event_id=str(ended.event_id), active=False, load=False)

    found = set(await selling_events(services.pool))

    assert found == {str(on_sale.event_id), str(ends_later.event_id)}
    assert str(inactive.event_id) not in found
