"""merge_part.lua on its own, on fakeredis and on real Redis: the cases the API rarely meets."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest_asyncio
from redis.asyncio import Redis

from service.keys import Keys
from service.redis.scripts import Scripts
from tests.conftest import TEST_KEY_PREFIX, delete_keys
from tests.lua.conftest import tier

PREFIX = TEST_KEY_PREFIX + "merge:"
E = "ev1"
NOW = 1_000_000
TTL = 60_000


@pytest_asyncio.fixture(params=["fakeredis", "redis"], loop_scope="session")
async def scripts(request, servers) -> AsyncIterator[Scripts]:
    client = fakeredis.FakeAsyncRedis() if request.param == "fakeredis" else Redis.from_url(servers.redis_url)
    await delete_keys(client, PREFIX)
    s = Scripts(client, Keys(PREFIX))
    await s.load()
    yield s
    await delete_keys(client, PREFIX)
    await client.aclose()


async def hold(s: Scripts, cart: str, qty: int, tier_id: str = "t1", now: int = NOW) -> None:
    reply, *_ = await s.reserve(
        event_id=E,
        cart_id=cart,
        tier_id=tier_id,
        quantity=qty,
        mode="add",
        now_ms=now,
        ttl_ms=TTL,
        max_lines=20,
        sweep_limit=0,
        request_id="",
        meta_fields={},
        meta_ttl_ms=TTL,
    )
    assert reply.result == "ok", reply


async def merge(s: Scripts, now: int = NOW):
    return await s.merge_part(
        event_id=E, guest_cart_id="guest", user_cart_id="user", now_ms=now, ttl_ms=TTL, max_lines=20
    )


async def held(s: Scripts, tier_id: str = "t1") -> int:
    return (await s.inventory(event_id=E, tier_ids=[tier_id])).tiers[tier_id].held


async def test_an_expired_guest_part_is_released_and_nothing_moves(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await hold(scripts, "guest", 2)
    await hold(scripts, "user", 1, now=NOW + TTL)

    reply = await merge(scripts, now=NOW + TTL)

    assert (reply.result, reply.moved, reply.lines["t1"].quantity) == ("ok", 0, 1)
    assert await held(scripts) == 1


async def test_a_user_part_in_checkout_takes_nothing_and_the_guest_keeps_its_part(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await hold(scripts, "guest", 2)
    await hold(scripts, "user", 1)
    begun = await scripts.checkout_begin(
        cart_id="user", event_ids=[E], order_id="o1", replace="", now_ms=NOW, deadline_ms=NOW + TTL
    )
    assert begun[E].result == "ok"

    reply = await merge(scripts)

    assert reply.result == "user-checkout"
    assert (await scripts.view(event_id=E, cart_id="guest", now_ms=NOW)).lines["t1"].quantity == 2
    assert await held(scripts) == 3


async def test_a_line_above_a_lowered_cap_keeps_what_it_holds(scripts):
    await scripts.tier_load(event_id=E, tier=tier(max_per_order=4), now_ms=NOW)
    await hold(scripts, "guest", 2)
    await hold(scripts, "user", 4)
    await scripts.tier_load(event_id=E, tier=tier(version=2, max_per_order=3), now_ms=NOW)

    reply = await merge(scripts)

    assert reply.lines["t1"].quantity == 4
    assert [(c.tier_id, c.requested, c.kept) for c in reply.capped] == [("t1", 6, 4)]
    assert (reply.moved, reply.released) == (0, 2)
    assert await held(scripts) == 4


async def test_merging_twice_moves_the_seats_once(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await hold(scripts, "guest", 2)
    first, second = await merge(scripts), await merge(scripts)
    assert (first.moved, second.moved) == (2, 0)
    assert first.lines == second.lines and second.lines["t1"].quantity == 2
    assert first.expiry_ms == NOW + TTL
    assert await held(scripts) == 2
