"""The minute sweep against real Redis: expired holds come back in bounded batches."""

from __future__ import annotations

import msgspec

from service.metrics import SWEEP_RELEASED
from tests.workers.conftest import TTL_MS, counters, hold, make_tier, now_ms
from workers.sweep import sweep_expired_parts


def spy_on_sweep(services, monkeypatch) -> list[tuple[str, int]]:
    """Record every sweep.lua call as (event_id, limit)."""
    calls: list[tuple[str, int]] = []
    real = services.scripts.sweep

    async def sweep(*, event_id, now_ms, limit):
        calls.append((event_id, limit))
        return await real(event_id=event_id, now_ms=now_ms, limit=limit)

    monkeypatch.setattr(services.scripts, "sweep", sweep)
    return calls


async def add_expired_parts(services, row, count: int, expiry_ms: int) -> None:
    """``count`` open parts of one seat each, expiring at ``expiry_ms``, written in one
    pipeline in the JSON reserve.lua writes (10,000 reserve calls would be slow)."""
    ev = services.keys.event(str(row.event_id))
    part = msgspec.json.encode({"s": "open", "o": "", "x": expiry_ms, "l": {str(row.id): 1}})
    carts = [f"bulk-{i}" for i in range(count)]
    pipe = services.redis.pipeline(transaction=False)
    pipe.hset(ev.carts, mapping=dict.fromkeys(carts, part))
    pipe.zadd(ev.expiries, dict.fromkeys(carts, expiry_ms))
    pipe.hincrby(ev.inventory, f"{row.id}:held", count)
    await pipe.execute()


async def test_sweep_releases_expired_holds_and_gives_their_seats_back(services):
    row = await make_tier(services, total=10)
    for quantity in (1, 2, 3):
        await hold(services, row, quantity)
    assert (await counters(services, row)).held == 6
    before = SWEEP_RELEASED._value.get()

    stats = await sweep_expired_parts(services, now_ms=now_ms() + TTL_MS + 1)

    assert stats.released == 3
    assert SWEEP_RELEASED._value.get() - before == 3
    tier = await counters(services, row)
    assert tier.held == 0 and tier.available == 10
    assert await services.redis.hlen(services.keys.event(str(row.event_id)).carts) == 0


async def test_sweep_leaves_holds_that_have_not_expired(services):
    row = await make_tier(services, total=10)
    await hold(services, row, 4)

    stats = await sweep_expired_parts(services, now_ms=now_ms())

    assert stats.released == 0
    assert (await counters(services, row)).held == 4


async def test_sweep_never_releases_a_part_in_checkout(services):
    row = await make_tier(services, total=10)
    await hold(services, row, 2)
    in_checkout = await hold(services, row, 3)
    begun = await services.scripts.checkout_begin(
        cart_id=in_checkout,
        event_ids=[str(row.event_id)],
        order_id="order-1",
        replace="",
        now_ms=now_ms(),
        deadline_ms=now_ms() + 60_000,
    )
    assert begun[str(row.event_id)].result == "ok"

    stats = await sweep_expired_parts(services, now_ms=now_ms() + 10 * TTL_MS)

    assert stats.released == 1
    assert (await counters(services, row)).held == 3
    part = await services.redis.hget(services.keys.event(str(row.event_id)).carts, in_checkout)
    assert msgspec.json.decode(part)["s"] == "checkout"


async def test_ten_thousand_expired_holds_of_one_event_are_released_in_bounded_batches(services, monkeypatch):
    row = await make_tier(services, total=20_000)
    expiry = now_ms() - 1
    await add_expired_parts(services, row, 10_000, expiry)
    calls = spy_on_sweep(services, monkeypatch)

    stats = await sweep_expired_parts(services, now_ms=expiry + 1, batch=500)

    assert stats.released == 10_000
    assert len(calls) == stats.calls == 10_000 // 500
    assert {limit for _, limit in calls} == {500}
    assert (await counters(services, row)).held == 0


async def test_a_crowded_event_takes_turns_so_the_others_are_swept_too(services, monkeypatch):
    crowded = await make_tier(services, total=5_000)
    quiet = await make_tier(services, total=10)
    expiry = now_ms() - 1
    await add_expired_parts(services, crowded, 1_000, expiry)
    await hold(services, quiet, 2, at_ms=expiry - TTL_MS)
    calls = spy_on_sweep(services, monkeypatch)

    stats = await sweep_expired_parts(services, now_ms=expiry + 1, batch=100, batches_per_turn=2)

    assert stats.released == 1_001 and stats.unfinished == 0
    events = [event for event, _ in calls]
    crowded_calls = [i for i, e in enumerate(events) if e == str(crowded.event_id)]
    assert events.index(str(quiet.event_id)) < crowded_calls[-1]
    assert (await counters(services, crowded)).held == 0
    assert (await counters(services, quiet)).held == 0


async def test_a_run_past_its_time_budget_stops_and_reports_the_events_left(services):
    row = await make_tier(services, total=10)
    await hold(services, row, 1)

    stats = await sweep_expired_parts(services, now_ms=now_ms() + TTL_MS + 1, budget_seconds=0)

    assert stats.calls == 0 and stats.unfinished == stats.events == 1
    assert (await counters(services, row)).held == 1
