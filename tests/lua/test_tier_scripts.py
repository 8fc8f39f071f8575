"""tier_load and install_sold keep the version rule: never roll back, never invent."""

from __future__ import annotations

import fakeredis

from tests.lua.conftest import tier

E = "ev1"


async def test_tier_load_installs_a_new_tier_with_nothing_held(scripts):
    reply = await scripts.tier_load(event_id=E, tier=tier(total=10, sold=3, sold_version=7), now_ms=1)
    assert (reply.total, reply.sold, reply.held, reply.version, reply.sold_version) == (10, 3, 0, 1, 7)


async def test_tier_load_ignores_an_older_definition_and_an_older_sold(scripts):
    await scripts.tier_load(event_id=E, tier=tier(version=5, total=10, sold=6, sold_version=9), now_ms=1)
    reply = await scripts.tier_load(event_id=E, tier=tier(version=4, total=99, sold=1, sold_version=8), now_ms=1)
    assert (reply.total, reply.sold, reply.version, reply.sold_version) == (10, 6, 5, 9)


async def test_tier_load_takes_a_newer_definition_and_keeps_held(scripts):
    await scripts.tier_load(event_id=E, tier=tier(version=1, total=10), now_ms=1)
    await scripts.redis.hset(scripts.keys.event(E).inventory, "t1:held", 4)
    reply = await scripts.tier_load(event_id=E, tier=tier(version=2, total=3), now_ms=1)
    assert (reply.total, reply.held) == (3, 4)  # a lowered total only blocks new holds


async def test_tier_load_notes_the_event_in_the_active_events_index(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=123)
    assert await scripts.redis.zscore(scripts.keys.active_events(), E) == 123


async def test_install_sold_takes_only_newer_versions(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sold=2, sold_version=2), now_ms=1)
    assert (await scripts.install_sold(event_id=E, pairs=[("t1", 1, 1)])).installed == 0
    assert (await scripts.install_sold(event_id=E, pairs=[("t1", 5, 3)])).installed == 1
    counters = (await scripts.inventory(event_id=E, tier_ids=["t1"])).tiers["t1"]
    assert counters.sold == 5


async def test_install_sold_never_creates_a_missing_tier(scripts):
    assert (await scripts.install_sold(event_id=E, pairs=[("ghost", 5, 3)])).installed == 0
    assert (await scripts.inventory(event_id=E, tier_ids=["ghost"])).tiers == {}


async def test_cart_touch_keeps_the_first_currency_and_writes_the_fields(scripts):
    key = scripts.keys.cart_meta("c1")
    sha = scripts._sha["cart_touch"]
    first = await scripts.redis.evalsha(sha, 1, key, 60_000, "VND", "ev:e1", "1")
    second = await scripts.redis.evalsha(sha, 1, key, 60_000, "USD", "ev:e2", "1", "owner", "u1")
    assert dict(zip(first[::2], first[1::2], strict=True)) == {b"cur": b"VND", b"ev:e1": b"1"}
    assert dict(zip(second[::2], second[1::2], strict=True)) == {
        b"cur": b"VND",
        b"ev:e1": b"1",
        b"ev:e2": b"1",
        b"owner": b"u1",
    }
    assert 0 < await scripts.redis.pttl(key) <= 60_000


async def test_the_inventory_hash_is_a_hash_table_from_its_first_tier(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=1)
    inventory = scripts.keys.event(E).inventory
    assert len(await scripts.redis.hget(inventory, "_layout")) > 64  # past hash-max-listpack-value
    if not isinstance(scripts.redis, fakeredis.FakeAsyncRedis):  # fakeredis has no encodings
        assert await scripts.redis.object("ENCODING", inventory) == b"hashtable"
