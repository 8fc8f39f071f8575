"""reserve, remove_line, clear_part, view and sweep, on fakeredis and on real Redis."""

from __future__ import annotations

import pytest

from service.redis.scripts import Scripts
from tests.lua.conftest import tier

E = "ev1"
NOW = 1_000_000
TTL = 60_000


async def reserve(
    s: Scripts,
    cart: str,
    qty: int,
    *,
    tier_id: str = "t1",
    mode: str = "add",
    now: int = NOW,
    request_id: str = "",
    max_lines: int = 20,
):
    reply, *_ = await s.reserve(
        event_id=E,
        cart_id=cart,
        tier_id=tier_id,
        quantity=qty,
        mode=mode,
        now_ms=now,
        ttl_ms=TTL,
        max_lines=max_lines,
        sweep_limit=50,
        request_id=request_id,
        meta_fields={f"ev:{E}": "1"},
        meta_ttl_ms=TTL * 2,
    )
    return reply


async def counters(s: Scripts, tier_id: str = "t1"):
    return (await s.inventory(event_id=E, tier_ids=[tier_id])).tiers[tier_id]


async def test_reserve_answers_not_loaded_and_creates_nothing_for_an_unknown_tier(scripts):
    reply = await reserve(scripts, "c1", 1)
    assert reply.result == "not-loaded"
    assert (await scripts.inventory(event_id=E, tier_ids=["t1"])).tiers == {}
    assert (await scripts.view(event_id=E, cart_id="c1", now_ms=NOW)).lines == {}


async def test_reserve_holds_seats_and_reports_what_is_left(scripts):
    await scripts.tier_load(event_id=E, tier=tier(total=10), now_ms=NOW)
    reply = await reserve(scripts, "c1", 3)
    assert (reply.result, reply.quantity, reply.previous, reply.available, reply.expiry_ms) == (
        "ok",
        3,
        0,
        7,
        NOW + TTL,
    )
    assert reply.lines["t1"].quantity == 3 and reply.lines["t1"].price == 500_000
    assert (await counters(scripts)).held == 3


async def test_reserve_refuses_more_than_available_and_changes_nothing(scripts):
    await scripts.tier_load(event_id=E, tier=tier(total=5, sold=2, sold_version=1), now_ms=NOW)
    await reserve(scripts, "c1", 2)
    reply = await reserve(scripts, "c2", 2)
    assert (reply.result, reply.available) == ("sold-out", 1)
    assert (await counters(scripts)).held == 2
    assert (await scripts.view(event_id=E, cart_id="c2", now_ms=NOW)).lines == {}


async def test_reserve_enforces_max_per_order_on_the_line_total(scripts):
    await scripts.tier_load(event_id=E, tier=tier(max_per_order=4), now_ms=NOW)
    await reserve(scripts, "c1", 3)
    reply = await reserve(scripts, "c1", 2)
    assert (reply.result, reply.what, reply.limit) == ("limit-exceeded", "per-order", 4)
    assert (await counters(scripts)).held == 3


async def test_reserve_enforces_lines_per_part(scripts):
    for t in ("t1", "t2"):
        await scripts.tier_load(event_id=E, tier=tier(t), now_ms=NOW)
    await reserve(scripts, "c1", 1, tier_id="t1", max_lines=1)
    reply = await reserve(scripts, "c1", 1, tier_id="t2", max_lines=1)
    assert (reply.result, reply.what) == ("limit-exceeded", "lines")


@pytest.mark.parametrize(
    ("fields", "result"),
    [
        ({"sales_start_ms": NOW + 1}, "sale-not-open"),
        ({"sales_end_ms": NOW}, "sale-closed"),
        ({"active": False}, "inactive"),
    ],
)
async def test_reserve_refuses_outside_the_sale(scripts, fields, result):
    await scripts.tier_load(event_id=E, tier=tier(**fields), now_ms=NOW)
    assert (await reserve(scripts, "c1", 1)).result == result
    assert (await counters(scripts)).held == 0


async def test_lowering_a_quantity_works_even_after_the_sale_closed(scripts):
    await scripts.tier_load(event_id=E, tier=tier(sales_end_ms=NOW + 10), now_ms=NOW)
    await reserve(scripts, "c1", 3)
    reply = await reserve(scripts, "c1", 1, mode="set", now=NOW + 20)
    assert (reply.result, reply.quantity) == ("ok", 1)
    assert (await counters(scripts)).held == 1


async def test_set_to_zero_removes_the_line_and_the_part(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await reserve(scripts, "c1", 3)
    reply = await reserve(scripts, "c1", 0, mode="set")
    assert (reply.result, reply.quantity, reply.previous, reply.expiry_ms) == ("ok", 0, 3, 0)
    assert (await counters(scripts)).held == 0
    assert (await scripts.view(event_id=E, cart_id="c1", now_ms=NOW)).state == ""


async def test_a_retried_add_with_the_same_request_id_changes_nothing(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    first = await reserve(scripts, "c1", 2, request_id="req-1")
    again = await reserve(scripts, "c1", 2, request_id="req-1")
    assert first.quantity == again.quantity == 2
    assert (await counters(scripts)).held == 2
    assert (await reserve(scripts, "c1", 1, request_id="req-2")).quantity == 3


async def test_an_expired_part_is_released_lazily_by_the_next_reserve(scripts):
    await scripts.tier_load(event_id=E, tier=tier(total=4), now_ms=NOW)
    await reserve(scripts, "c1", 4)
    assert (await reserve(scripts, "c2", 1)).result == "sold-out"
    reply = await reserve(scripts, "c2", 4, now=NOW + TTL)
    assert (reply.result, reply.quantity) == ("ok", 4)
    assert (await counters(scripts)).held == 4
    assert (await scripts.view(event_id=E, cart_id="c1", now_ms=NOW + TTL)).lines == {}


async def test_touching_an_expired_part_starts_it_afresh(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await reserve(scripts, "c1", 3)
    reply = await reserve(scripts, "c1", 1, now=NOW + TTL + 1)
    assert (reply.quantity, reply.previous) == (1, 0)
    assert (await counters(scripts)).held == 1


async def test_a_buyers_own_expired_part_the_bounded_sweep_did_not_reach_starts_afresh(scripts):
    """The sweep at the start of reserve releases at most 50 expired parts, oldest first; with
    more ahead of it, the buyer's own expired part is still there when its next add runs.
    Its holds ended at expiry: the add starts a new part, and held counts it once."""
    await scripts.tier_load(event_id=E, tier=tier(total=100), now_ms=NOW)
    for n in range(60):  # expire before the buyer's part does
        await reserve(scripts, f"early-{n}", 1, now=NOW - 1000)
    await reserve(scripts, "buyer", 3)

    reply = await reserve(scripts, "buyer", 1, now=NOW + TTL + 1)

    assert (reply.result, reply.quantity, reply.previous) == ("ok", 1, 0)
    assert (await counters(scripts)).held == 10 + 1  # 60 - 50 swept early parts, and the new line


async def test_every_change_moves_the_expiry(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await reserve(scripts, "c1", 1)
    reply = await reserve(scripts, "c1", 1, now=NOW + 1000)
    assert reply.expiry_ms == NOW + 1000 + TTL


async def test_remove_line_gives_seats_back_and_is_idempotent(scripts):
    for t in ("t1", "t2"):
        await scripts.tier_load(event_id=E, tier=tier(t), now_ms=NOW)
    await reserve(scripts, "c1", 2, tier_id="t1")
    await reserve(scripts, "c1", 1, tier_id="t2")
    first = await scripts.remove_line(event_id=E, cart_id="c1", tier_id="t1", now_ms=NOW)
    second = await scripts.remove_line(event_id=E, cart_id="c1", tier_id="t1", now_ms=NOW)
    assert (first.removed, second.removed) == (2, 0)
    assert list(second.lines) == ["t2"]
    assert (await counters(scripts, "t1")).held == 0
    assert (await counters(scripts, "t2")).held == 1


async def test_clear_part_releases_every_line(scripts):
    for t in ("t1", "t2"):
        await scripts.tier_load(event_id=E, tier=tier(t), now_ms=NOW)
    await reserve(scripts, "c1", 2, tier_id="t1")
    await reserve(scripts, "c1", 3, tier_id="t2")
    assert (await scripts.clear_part(event_id=E, cart_id="c1")).released == 5
    assert (await scripts.clear_part(event_id=E, cart_id="c1")).released == 0
    assert (await counters(scripts, "t1")).held == (await counters(scripts, "t2")).held == 0


async def test_view_hides_an_expired_part_without_changing_it(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await reserve(scripts, "c1", 2)
    assert (await scripts.view(event_id=E, cart_id="c1", now_ms=NOW + TTL - 1)).lines["t1"].quantity == 2
    assert (await scripts.view(event_id=E, cart_id="c1", now_ms=NOW + TTL)).lines == {}
    assert (await counters(scripts)).held == 2  # view never releases


async def test_sweep_releases_expired_parts_in_bounded_batches(scripts):
    await scripts.tier_load(event_id=E, tier=tier(total=100, max_per_order=1), now_ms=NOW)
    for i in range(25):
        await reserve(scripts, f"c{i}", 1, now=NOW + i)
    first = await scripts.sweep(event_id=E, now_ms=NOW + TTL + 100, limit=10)
    assert (first.released, first.due) == (10, 15)
    rest = await scripts.sweep(event_id=E, now_ms=NOW + TTL + 100, limit=100)
    assert (rest.released, rest.due) == (15, 0)
    assert (await counters(scripts)).held == 0


async def test_sweep_leaves_parts_that_have_not_expired(scripts):
    await scripts.tier_load(event_id=E, tier=tier(), now_ms=NOW)
    await reserve(scripts, "old", 1, now=NOW)
    await reserve(scripts, "new", 2, now=NOW + 5000)
    reply = await scripts.sweep(event_id=E, now_ms=NOW + TTL, limit=100)
    assert reply.released == 1
    assert (await counters(scripts)).held == 2
