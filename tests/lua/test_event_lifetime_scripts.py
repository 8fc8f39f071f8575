"""retire_event (a finished event leaves Redis in one step) and recount_held (held recounted
in bounded chunks, exact while parts change between the chunks), on fakeredis and on real
Redis. The scripts that write parts are checked to tell a running recount of every change."""

from __future__ import annotations

import re

import msgspec
import pytest

from service.redis.gateway import LUA_DIR
from service.redis.replies import CommittedPart
from service.redis.scripts import Scripts
from tests.lua.conftest import tier
from tests.lua.test_reservation_scripts import NOW, TTL, E, counters, reserve

GRACE = 60_000
# More parts than a hash keeps as a listpack (hash-max-listpack-entries: 128 by default, up
# to 512 on some servers): HSCAN then answers in chunks.
MANY = 600
LATER = NOW + GRACE + 1  # past the grace of a tier loaded at NOW


async def event_keys(s: Scripts) -> dict[str, int]:
    ev = s.keys.event(E)
    return {
        name: await s.redis.exists(key)
        for name, key in (("inv", ev.inventory), ("carts", ev.carts), ("exp", ev.expiries), ("co", ev.checkouts))
    }


async def retire(s: Scripts, now: int = LATER) -> str:
    return (await s.retire_event(event_id=E, now_ms=now, grace_ms=GRACE)).result


# -- retire_event ------------------------------------------------------------------------------


async def test_an_event_whose_sales_ended_and_has_no_part_is_deleted_whole(scripts):
    await scripts.tier_load(event_id=E, tier=tier("t1", sales_end_ms=NOW + 10), now_ms=NOW)
    await scripts.tier_load(event_id=E, tier=tier("t2", active=False), now_ms=NOW)
    await reserve(scripts, "c1", 1)
    await scripts.clear_part(event_id=E, cart_id="c1")
    await scripts.redis.zadd(scripts.keys.event(E).checkouts, {"stale": 1})

    reply = await scripts.retire_event(event_id=E, now_ms=LATER, grace_ms=GRACE)

    assert (reply.result, reply.tiers, sorted(reply.tier_ids)) == ("retired", 2, ["t1", "t2"])
    assert await event_keys(scripts) == {"inv": 0, "carts": 0, "exp": 0, "co": 0}
    assert await retire(scripts) == "gone"


@pytest.mark.parametrize(
    "fields,result",
    [
        ({"sales_end_ms": 0}, "selling"),  # no end: never finished
        ({"sales_end_ms": LATER + 1}, "selling"),
        ({"sales_end_ms": LATER}, "retired"),  # the sale closes at its end (reserve.lua: now >= end)
        ({"active": False}, "retired"),
    ],
)
async def test_an_event_is_finished_only_when_every_tier_is_inactive_or_past_its_end(scripts, fields, result):
    await scripts.tier_load(event_id=E, tier=tier("t1", active=False), now_ms=NOW)
    await scripts.tier_load(event_id=E, tier=tier("t2", **fields), now_ms=NOW)
    assert await retire(scripts) == result


async def test_an_event_with_a_part_open_or_in_checkout_is_kept(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sales_end_ms=NOW + TTL), now_ms=NOW)
    await reserve(scripts, "c1", 1)
    assert await retire(scripts, now=NOW + TTL) == "parts"  # expired but not swept: still a part
    await scripts.checkout_begin(
        cart_id="c1", event_ids=[E], order_id="o1", replace="", now_ms=NOW, deadline_ms=NOW + 10
    )
    assert await retire(scripts) == "parts"
    assert (await counters(scripts)).held == 1


async def test_an_event_loaded_within_the_grace_is_kept(scripts):
    await scripts.tier_load(event_id=E, tier=tier(active=False), now_ms=NOW)
    assert await retire(scripts, now=NOW + GRACE - 1) == "recent"
    assert await retire(scripts, now=NOW + GRACE) == "retired"


async def test_a_retired_event_answers_not_loaded_and_reloads_cleanly(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sales_end_ms=NOW + 10, sold=3, sold_version=2), now_ms=NOW)
    assert await retire(scripts) == "retired"

    assert (await reserve(scripts, "c1", 1, now=LATER)).result == "not-loaded"
    # An admin opens the sale again: the load installs the row as new, nothing held.
    await scripts.tier_load(event_id=E, tier=tier(version=2, sales_end_ms=0, sold=3, sold_version=2), now_ms=LATER)
    reply = await reserve(scripts, "c1", 2, now=LATER)
    assert (reply.result, reply.available) == ("ok", 5)
    assert (await counters(scripts)).held == 2


async def test_sweep_reports_the_parts_left(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await reserve(scripts, "old", 1)
    await reserve(scripts, "new", 1, now=NOW + TTL)
    assert (await scripts.sweep(event_id=E, now_ms=NOW + TTL, limit=10)).parts == 1
    assert (await scripts.sweep(event_id=E, now_ms=NOW + 2 * TTL, limit=10)).parts == 0


# -- recount_held ------------------------------------------------------------------------------


async def recount(s: Scripts, recount_id: str, count: int = 5, *, between=None):
    """Run a recount to its end; ``between(i)`` runs after the i-th call. The last reply."""
    cursor, calls = "0", 0
    while True:
        reply = await s.recount_held(event_id=E, recount_id=recount_id, cursor=cursor, count=count)
        calls += 1
        if reply.result != "more":
            return reply, calls
        cursor = reply.cursor
        if between:
            await between(calls)


async def load_two_tiers(s: Scripts) -> None:
    for t in ("t1", "t2"):
        await s.tier_load(event_id=E, tier=tier(t, total=10_000, max_per_order=50), now_ms=NOW)


async def test_recount_sets_held_to_the_parts_and_leaves_no_trace_in_the_inventory(scripts):
    await load_two_tiers(scripts)
    for i in range(30):
        await reserve(scripts, f"c{i}", 1 + i % 3, tier_id="t1" if i % 2 else "t2")
    inv = scripts.keys.event(E).inventory
    await scripts.redis.hincrby(inv, "t1:held", 7)  # drift the recount must find
    await scripts.redis.hset(inv, "t2:held", 0)

    reply, _ = await recount(scripts, "rc1")

    assert reply.result == "done"
    assert {t: (c.held_before, c.held) for t, c in reply.tiers.items()} == {"t1": (37, 30), "t2": (0, 30)}
    assert ((await counters(scripts, "t1")).held, (await counters(scripts, "t2")).held) == (30, 30)
    fields = {f.decode() for f in await scripts.redis.hkeys(inv)}
    assert not {f for f in fields if f == "_rc" or f.endswith(":rc")}


async def test_recount_of_an_event_not_loaded_changes_nothing(scripts):
    reply, calls = await recount(scripts, "rc1")
    assert (reply.result, calls) == ("not-loaded", 1)
    assert await event_keys(scripts) == {"inv": 0, "carts": 0, "exp": 0, "co": 0}


async def test_a_new_recount_takes_over_and_a_repeated_begin_is_refused(scripts):
    await load_two_tiers(scripts)
    for i in range(MANY):
        await reserve(scripts, f"c{i}", 1)
    first = await scripts.recount_held(event_id=E, recount_id="old", cursor="0", count=10)
    assert first.result == "more"
    assert (await scripts.recount_held(event_id=E, recount_id="old", cursor="0", count=10)).result == "superseded"

    takeover, _ = await recount(scripts, "new", count=50)
    after = await scripts.recount_held(event_id=E, recount_id="old", cursor=first.cursor, count=10)

    assert (takeover.result, takeover.tiers["t1"].held) == ("done", MANY)
    assert after.result == "superseded"
    assert (await counters(scripts, "t1")).held == MANY


async def test_every_part_writer_keeps_a_running_recount_exact(scripts):
    """Between the chunks of one recount, every script that changes or deletes parts runs,
    on parts the recount has counted and on parts it has not: the recount still ends at
    exactly the seats of the parts, and corrects exactly the drift made by hand."""
    await load_two_tiers(scripts)
    for i in range(MANY):
        await reserve(scripts, f"c{i}", 1 + i % 4, tier_id="t1" if i % 3 else "t2")
    await reserve(scripts, "old", 2, tier_id="t1", now=NOW - TTL)  # expired, not swept yet
    inv, carts = scripts.keys.event(E).inventory, scripts.keys.event(E).carts
    await scripts.redis.hincrby(inv, "t1:held", 5)  # drift made by hand
    now = NOW + 1

    async def parts_counted() -> tuple[list[str], list[str]]:
        stored = {c.decode(): msgspec.json.decode(raw) for c, raw in (await scripts.redis.hgetall(carts)).items()}
        mark = (await scripts.redis.hget(inv, "_rc")).decode()
        counted = sorted(c for c, p in stored.items() if p.get("k") == mark and c.startswith("c"))
        return counted, sorted(c for c, p in stored.items() if p.get("k") != mark and c.startswith("c"))

    async def writers(step: int) -> None:
        counted, uncounted = await parts_counted()
        for j, cart in enumerate(counted[:2] + uncounted[:2]):
            n = 10 * step + j
            match n % 7:
                case 0:
                    await reserve(scripts, cart, 2, tier_id="t2", now=now)
                case 1:
                    await reserve(scripts, cart, 0, tier_id="t1", mode="set", now=now)
                case 2:
                    await scripts.remove_line(event_id=E, cart_id=cart, tier_id="t2", now_ms=now)
                case 3:
                    await scripts.clear_part(event_id=E, cart_id=cart)
                case 4:
                    await scripts.merge_part(
                        event_id=E, guest_cart_id=cart, user_cart_id=f"user{step}", now_ms=now, ttl_ms=TTL, max_lines=20
                    )
                case 5:
                    order = f"o{n}"
                    begun = await scripts.checkout_begin(
                        cart_id=cart, event_ids=[E], order_id=order, replace="", now_ms=now, deadline_ms=now + TTL
                    )
                    if begun[E].result == "ok" and step % 2:
                        await scripts.checkout_apply(cart_id=cart, order_id=order, changes={E: []})
                case 6:
                    await reserve(scripts, f"new{n}", 3, tier_id="t1", now=now)
        await scripts.sweep(event_id=E, now_ms=now, limit=1)  # releases "old" once
        if step == 3:  # the reconciler applies a committed checkout between two chunks
            begun = await scripts.checkout_begin(
                cart_id=uncounted[-1], event_ids=[E], order_id="o-rec", replace="", now_ms=now, deadline_ms=now + TTL
            )
            assert begun[E].result == "ok"
            await scripts.reconcile(
                event_id=E,
                pairs=[],
                max_parts=0,
                applied=[CommittedPart(cart_id=uncounted[-1], order_id="o-rec", changes=[])],
            )

    reply, calls = await recount(scripts, "rc1", count=40, between=writers)

    assert reply.result == "done" and calls > 5
    stored = [msgspec.json.decode(raw) for raw in (await scripts.redis.hgetall(carts)).values()]
    for t in ("t1", "t2"):
        seats = sum(p["l"].get(t, 0) for p in stored)
        assert (await counters(scripts, t)).held == seats, t
    assert reply.tiers["t1"].held_before - reply.tiers["t1"].held == 5
    assert reply.tiers["t2"].held_before == reply.tiers["t2"].held


# -- every script that writes parts tells a running recount ------------------------------------

# Scripts that rewrite a part without changing its lines (the mark `k` survives the
# decode/encode round trip), and the recount itself.
STATE_ONLY = {"checkout_begin", "checkout_abort", "recount_held"}
TELLS = re.compile(r"recount_delta\(|recount_drop\(|release_part\(")


def test_every_script_that_writes_parts_tells_a_running_recount():
    for path in sorted(LUA_DIR.glob("*.lua")):
        body = path.read_text().split("]]", 1)[-1]
        writes = re.findall(r"redis\.call\('(HSET|HDEL)', carts", body)
        if writes and path.stem not in STATE_ONLY:
            assert TELLS.search(body), f"{path.name} writes parts but never tells a running recount (parts.lua)"
