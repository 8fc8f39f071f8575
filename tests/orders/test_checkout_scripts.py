"""checkout_begin, checkout_apply, checkout_abort and checkout_unlock, on fakeredis and on
real Redis: the state moves of a part, their idempotency, and what each leaves in held."""

from __future__ import annotations

import fakeredis
import pytest
from redis.crc import key_slot

from service.keys import Keys
from service.redis.scripts import Scripts
from tests.lua.conftest import PREFIX, scripts, tier  # noqa: F401 (scripts: the fixture, on both servers)

E, CART = "ev1", "cart1"
NOW, TTL, WINDOW = 1_000_000, 60_000, 40_000
O1, O2 = "order-1", "order-2"


async def load(s: Scripts) -> None:
    await s.tier_load(event_id=E, tier=tier(total=10), now_ms=NOW)


async def hold(s: Scripts, qty: int, tier_id: str = "t1", cart: str = CART, now: int = NOW) -> None:
    reply, *_ = await s.reserve(
        event_id=E,
        cart_id=cart,
        tier_id=tier_id,
        quantity=qty,
        mode="add",
        now_ms=now,
        ttl_ms=TTL,
        max_lines=20,
        sweep_limit=10,
        request_id="",
        meta_fields={"ev:" + E: "1"},
        meta_ttl_ms=TTL * 2,
    )
    assert reply.result == "ok"


async def begin(s: Scripts, order_id: str = O1, replace: str = "", now: int = NOW, cart: str = CART):
    return (
        await s.checkout_begin(
            cart_id=cart, event_ids=[E], order_id=order_id, replace=replace, now_ms=now, deadline_ms=now + WINDOW
        )
    )[E]


async def apply(s: Scripts, order_id: str = O1, changes=(("t1", 1, 3),)):
    """checkout_apply with the order's (tier, sold_version, delta) changes of the event."""
    return (await s.checkout_apply(cart_id=CART, order_id=order_id, changes={E: list(changes)}))[E]


async def abort(s: Scripts, order_id: str = O1, now: int = NOW, grace: int = 0):
    return (await s.checkout_abort(cart_id=CART, order_id=order_id, event_ids=[E], now_ms=now, grace_ms=grace))[E]


async def counters(s: Scripts, tier_id: str = "t1"):
    return (await s.inventory(event_id=E, tier_ids=[tier_id])).tiers[tier_id]


async def sets(s: Scripts) -> tuple[dict, dict]:
    ev = s.keys.event(E)
    exp = dict(await s.redis.zrange(ev.expiries, 0, -1, withscores=True))
    co = dict(await s.redis.zrange(ev.checkouts, 0, -1, withscores=True))
    return exp, co


def test_the_checkout_scripts_touch_keys_of_one_slot():
    keys = Keys("tc:")
    ev = keys.event("6b1c2a4e-1f3d-4c55-8a77-0c9e8d7f6a5b")
    assert len({key_slot(k.encode()) for k in (ev.inventory, ev.carts, ev.expiries, ev.checkouts)}) == 1
    cart = "0f6f7a8e-2b1c-4d3e-9f8a-7b6c5d4e3f2a"
    assert key_slot(keys.cart_meta(cart).encode()) == key_slot(keys.cart_checkout_lock(cart).encode())


async def test_begin_moves_an_open_part_to_checkout_under_the_order_id_and_answers_its_lines(scripts):
    await load(scripts)
    await hold(scripts, 3)

    reply = await begin(scripts)

    assert (reply.result, reply.order_id, reply.hold_expiry_ms) == ("ok", O1, NOW + TTL)
    line = reply.lines["t1"]
    assert line.quantity == 3 and line.price == 500_000 and line.currency == "VND"
    assert await sets(scripts) == ({}, {CART.encode(): float(NOW + WINDOW)})
    view = await scripts.view(event_id=E, cart_id=CART, now_ms=NOW)
    assert (view.state, view.order_id) == ("checkout", O1)
    assert (await counters(scripts)).held == 3  # still held until applied


async def test_begin_again_keeps_the_order_id_the_part_names(scripts):
    await load(scripts)
    await hold(scripts, 2)
    await begin(scripts, O1)

    again = await begin(scripts, O2, now=NOW + 1000)

    assert (again.result, again.order_id, again.hold_expiry_ms) == ("ok", O1, NOW + TTL)
    assert (await sets(scripts))[1] == {CART.encode(): float(NOW + 1000 + WINDOW)}


async def test_a_part_moved_back_names_no_order_and_takes_the_next_begins_id(scripts):
    await load(scripts)
    await hold(scripts, 2)
    await begin(scripts, O1)
    await abort(scripts, O1)

    assert (await begin(scripts, O2)).order_id == O2


async def test_begin_gives_up_the_named_order_only_for_the_id_it_may_replace(scripts):
    await load(scripts)
    await hold(scripts, 2)
    await begin(scripts, O1)

    assert (await begin(scripts, O2, replace="someone-else")).order_id == O1
    assert (await begin(scripts, O2, replace=O1)).order_id == O2


async def test_begin_releases_an_expired_part_and_says_so(scripts):
    await load(scripts)
    await hold(scripts, 4)

    reply = await begin(scripts, now=NOW + TTL)

    assert reply.result == "expired"
    assert (await counters(scripts)).held == 0
    assert await sets(scripts) == ({}, {})
    assert (await begin(scripts, now=NOW + TTL)).result == "empty"


async def test_begin_answers_empty_for_no_part(scripts):
    await load(scripts)
    assert (await begin(scripts)).result == "empty"


async def test_begin_refuses_a_part_whose_tier_is_not_in_redis_and_changes_nothing(scripts):
    await load(scripts)
    await hold(scripts, 1)
    await scripts.redis.hdel(scripts.keys.event(E).inventory, "t1:price")

    reply = await begin(scripts)

    assert (reply.result, reply.tiers) == ("not-loaded", ["t1"])
    assert (await scripts.view(event_id=E, cart_id=CART, now_ms=NOW)).state == "open"


async def test_reserve_and_clear_refuse_a_part_in_checkout(scripts):
    await load(scripts)
    await hold(scripts, 1)
    await begin(scripts)

    reply, *_ = await scripts.reserve(
        event_id=E,
        cart_id=CART,
        tier_id="t1",
        quantity=1,
        mode="add",
        now_ms=NOW,
        ttl_ms=TTL,
        max_lines=20,
        sweep_limit=10,
        request_id="",
        meta_fields={},
        meta_ttl_ms=TTL,
    )
    assert reply.result == "checkout-in-progress"
    assert (await scripts.clear_part(event_id=E, cart_id=CART)).result == "checkout-in-progress"
    assert (await counters(scripts)).held == 1


async def test_a_sweep_never_releases_a_part_in_checkout(scripts):
    await load(scripts)
    await hold(scripts, 2)
    await begin(scripts)

    await scripts.sweep(event_id=E, now_ms=NOW + 10 * TTL, limit=100)

    assert (await counters(scripts)).held == 2


async def test_apply_releases_the_hold_installs_sold_and_deletes_the_part_once(scripts):
    await load(scripts)
    await hold(scripts, 3)
    await hold(scripts, 2, cart="other")
    await begin(scripts)

    first = await apply(scripts, O1, [("t1", 1, 3)])
    second = await apply(scripts, O1, [("t1", 1, 3)])

    assert (first.result, first.seats, first.counted, second.result, second.counted) == ("ok", 3, 1, "gone", 0)
    c = await counters(scripts)
    assert (c.sold, c.held, c.available) == (3, 2, 5)
    assert (await scripts.view(event_id=E, cart_id=CART, now_ms=NOW)).state == ""
    exp, co = await sets(scripts)
    assert co == {} and list(exp) == [b"other"]


async def test_apply_does_not_count_a_change_a_newer_installed_pair_holds(scripts):
    await load(scripts)
    await hold(scripts, 3)
    await begin(scripts)
    await scripts.install_sold(event_id=E, pairs=[("t1", 7, 5)])

    await apply(scripts, O1, [("t1", 1, 3)])

    assert (await counters(scripts)).sold == 7


async def test_apply_leaves_a_part_of_another_order_alone(scripts):
    await load(scripts)
    await hold(scripts, 3)
    await begin(scripts, O1)

    reply = await apply(scripts, O2, [])

    assert reply.result == "gone"
    assert (await counters(scripts)).held == 3 and (await sets(scripts))[1] != {}


async def test_apply_counts_the_orders_change_even_when_its_part_is_gone(scripts):
    await load(scripts)
    await hold(scripts, 3)
    await begin(scripts, O1)
    await scripts.redis.hdel(scripts.keys.event(E).carts, CART)  # lost, as in a partial flush

    reply = await apply(scripts, O1, [("t1", 1, 3)])

    assert (reply.result, reply.counted) == ("gone", 1)
    assert (await counters(scripts)).sold == 3


async def test_abort_moves_the_part_back_to_open_with_its_hold_and_no_order(scripts):
    await load(scripts)
    await hold(scripts, 3)
    await begin(scripts, O1)

    reply = await abort(scripts, O1, now=NOW + 1000, grace=5000)

    assert (reply.result, reply.expiry_ms) == ("ok", NOW + TTL)  # its own expiry was later than now + grace
    view = await scripts.view(event_id=E, cart_id=CART, now_ms=NOW + 1000)
    assert (view.state, view.order_id, view.expiry_ms) == ("open", "", NOW + TTL)
    assert (await counters(scripts)).held == 3
    assert await sets(scripts) == ({CART.encode(): float(NOW + TTL)}, {})
    assert (await abort(scripts, O1)).result == "open"


async def test_abort_gives_a_late_part_a_grace_period(scripts):
    await load(scripts)
    await hold(scripts, 1)
    await begin(scripts, O1)

    reply = await abort(scripts, O1, now=NOW + 2 * TTL, grace=30_000)

    assert reply.expiry_ms == NOW + 2 * TTL + 30_000


async def test_abort_leaves_a_part_of_another_order_and_a_missing_part_alone(scripts):
    await load(scripts)
    await hold(scripts, 1)
    await begin(scripts, O1)

    assert (await abort(scripts, O2)).result == "other-order"
    assert (await apply(scripts, O1)).result == "ok"
    assert (await abort(scripts, O1)).result == "gone"


async def test_unlock_releases_only_the_holders_lock_and_writes_the_meta(scripts):
    assert await scripts.checkout_lock(CART, "token-a", 10_000)
    assert not await scripts.checkout_lock(CART, "token-b", 10_000)

    refused = await scripts.checkout_unlock(CART, "token-b")
    released = await scripts.checkout_unlock(
        CART, "token-a", remember={"last_order": "o 1"}, forget=["promo"], meta_ttl_ms=10_000
    )

    assert (refused.result, released.result) == ("not-held", "ok")
    assert await scripts.checkout_lock(CART, "token-b", 10_000)
    assert (await scripts.cart_meta(CART))[b"last_order"] == b"o 1"


async def test_due_checkouts_lists_parts_past_their_deadline_with_their_order(scripts):
    await load(scripts)
    await hold(scripts, 2)
    await hold(scripts, 1, cart="later")
    await begin(scripts, O1)
    await begin(scripts, O2, cart="later", now=NOW + 5000)

    due = await scripts.due_checkouts(event_id=E, now_ms=NOW + WINDOW, limit=10)

    assert [(d.cart_id, d.part.state, d.part.order_id, d.part.lines) for d in due] == [
        (CART, "checkout", O1, {"t1": 2})
    ]
    assert len(await scripts.due_checkouts(event_id=E, now_ms=NOW + WINDOW + 5000, limit=10)) == 2
    assert len(await scripts.due_checkouts(event_id=E, now_ms=NOW + WINDOW + 5000, limit=1)) == 1


@pytest.mark.parametrize("script", ["checkout_begin", "checkout_apply", "checkout_abort"])
async def test_a_flushed_script_cache_is_reloaded_and_the_call_made_once(script):
    # fakeredis only: SCRIPT FLUSH would empty the cache of every user of a shared Redis.
    scripts = Scripts(fakeredis.FakeAsyncRedis(), Keys(PREFIX))
    await load(scripts)
    await hold(scripts, 2)
    if script != "checkout_begin":
        await begin(scripts)
    await scripts.redis.script_flush()
    if script == "checkout_begin":
        assert (await begin(scripts)).result == "ok"
    elif script == "checkout_apply":
        assert (await apply(scripts)).seats == 2
        assert (await counters(scripts)).held == 0
    else:
        assert (await abort(scripts)).result == "ok"
