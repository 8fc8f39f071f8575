"""Redis `sold` counts every committed change of quantity_sold once, whatever the order in
which they arrive (lua/include/sold.lua), and a checkout's apply moves its seats from
`held` to `sold` in one step: availability is exact, never short by the seats of a
checkout that committed before another one's newer count arrived."""

from __future__ import annotations

import asyncio

import fakeredis
from hypothesis import given, settings, strategies as st

from service.keys import Keys
from service.redis.scripts import Scripts
from tests.lua.conftest import tier

E = "ev1"
NOW, TTL, WINDOW = 1_000_000, 60_000, 40_000


async def counters(s: Scripts):
    return (await s.inventory(event_id=E, tier_ids=["t1"])).tiers["t1"]


async def raw(s: Scripts) -> dict[str, str]:
    fields = await s.redis.hgetall(s.keys.event(E).inventory)
    return {k.decode(): v.decode() for k, v in fields.items() if k.startswith(b"t1:sold") or k == b"t1:ahead"}


async def hold_and_begin(s: Scripts, cart: str, qty: int, order_id: str) -> None:
    reply, *_ = await s.reserve(
        event_id=E,
        cart_id=cart,
        tier_id="t1",
        quantity=qty,
        mode="add",
        now_ms=NOW,
        ttl_ms=TTL,
        max_lines=20,
        sweep_limit=0,
        request_id="",
        meta_fields={},
        meta_ttl_ms=TTL,
    )
    assert reply.result == "ok"
    begun = await s.checkout_begin(
        cart_id=cart, event_ids=[E], order_id=order_id, replace="", now_ms=NOW, deadline_ms=NOW + WINDOW
    )
    assert begun[E].result == "ok"


async def test_a_later_checkout_applied_first_never_counts_an_earlier_ones_seats_twice(scripts):
    """Buyer A commits at version 1, buyer B at version 2, B's apply runs first: the seat A
    still holds is not also counted in sold, so the last seat stays on sale to C."""
    await scripts.tier_load(event_id=E, tier=tier(total=3, max_per_order=3), now_ms=NOW)
    await hold_and_begin(scripts, "a", 1, "order-a")
    await hold_and_begin(scripts, "b", 1, "order-b")

    await scripts.checkout_apply(cart_id="b", order_id="order-b", changes={E: [("t1", 2, 1)]})

    c = await counters(scripts)
    assert (c.sold, c.held, c.available) == (1, 1, 1)
    assert await raw(scripts) == {"t1:sold": "1", "t1:sold_v": "0", "t1:ahead": '{"2":1}'}
    reply, *_ = await scripts.reserve(
        event_id=E,
        cart_id="c",
        tier_id="t1",
        quantity=1,
        mode="add",
        now_ms=NOW,
        ttl_ms=TTL,
        max_lines=20,
        sweep_limit=0,
        request_id="",
        meta_fields={},
        meta_ttl_ms=TTL,
    )
    assert reply.result == "ok"  # the last seat is sold to the last buyer

    await scripts.checkout_apply(cart_id="a", order_id="order-a", changes={E: [("t1", 1, 1)]})

    c = await counters(scripts)
    assert (c.sold, c.held, c.available) == (2, 1, 0)
    assert await raw(scripts) == {"t1:sold": "2", "t1:sold_v": "2"}  # the gap closed: no ahead left


async def test_a_change_counted_once_whatever_repeats_it(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sold=4, sold_version=4), now_ms=NOW)
    for _ in range(3):
        await scripts.count_sold(event_id=E, changes=[("t1", 6, -2), ("t1", 5, 1)])
    assert await raw(scripts) == {"t1:sold": "3", "t1:sold_v": "6"}
    assert (await scripts.count_sold(event_id=E, changes=[("t1", 3, 9)])).counted == 0  # older than counted


async def test_an_installed_pair_keeps_the_changes_counted_above_it(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sold=0, sold_version=0), now_ms=NOW)
    await scripts.count_sold(event_id=E, changes=[("t1", 3, 2), ("t1", 5, 1)])  # 1, 2 and 4 not heard yet

    await scripts.install_sold(event_id=E, pairs=[("t1", 4, 3)])  # PostgreSQL at version 3: 4 sold

    assert await raw(scripts) == {"t1:sold": "5", "t1:sold_v": "3", "t1:ahead": '{"5":1}'}
    await scripts.count_sold(event_id=E, changes=[("t1", 4, -1)])
    assert await raw(scripts) == {"t1:sold": "4", "t1:sold_v": "5"}


async def test_counting_skips_a_tier_redis_does_not_have(scripts):
    assert (await scripts.count_sold(event_id=E, changes=[("ghost", 1, 2)])).counted == 0
    assert (await scripts.inventory(event_id=E, tier_ids=["ghost"])).tiers == {}


async def test_tier_load_installs_its_pair_under_the_changes_counted_ahead(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sold=0, sold_version=0), now_ms=NOW)
    await scripts.count_sold(event_id=E, changes=[("t1", 2, 3)])

    reply = await scripts.tier_load(event_id=E, tier=tier(version=2, sold=1, sold_version=1), now_ms=NOW)

    assert (reply.sold, reply.sold_version) == (4, 2)


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(1, 9))), st.integers(0, 8))
def test_any_arrival_order_ends_at_the_truth(order, pair_at):
    """Eight committed changes arrive in any order, with PostgreSQL's pair at some version
    installed between them: sold always equals the truth of the changes heard so far, and
    ends at PostgreSQL's count."""
    deltas = {v: (3 if v % 3 else -1) for v in range(1, 9)}
    base = 10

    async def run() -> None:
        s = Scripts(fakeredis.FakeAsyncRedis(), Keys("chain:"))
        await s.tier_load(event_id=E, tier=tier(total=100, sold=base, sold_version=0), now_ms=NOW)
        heard: set[int] = set()
        for i, version in enumerate(order):
            if i == pair_at:  # the reconciler read PostgreSQL at version pair_at: changes 1..pair_at
                truth = base + sum(deltas[v] for v in range(1, pair_at + 1))
                await s.install_sold(event_id=E, pairs=[("t1", truth, pair_at)])
                heard |= set(range(1, pair_at + 1))
            await s.count_sold(event_id=E, changes=[("t1", version, deltas[version])])
            heard.add(version)
            assert (await counters(s)).sold == base + sum(deltas[v] for v in heard)
        assert (await counters(s)).sold == base + sum(deltas.values())
        assert (await raw(s))["t1:sold_v"] == "8"

    asyncio.run(run())
