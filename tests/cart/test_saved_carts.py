"""A signed-in user's cart survives a Redis loss: written behind to PostgreSQL, held again on
the next use where seats are free, never oversold, never brought back once bought."""

from __future__ import annotations

import asyncpg
import msgspec

from service.cart.saved import SAVE
from service.clock import now_ms
from tests.api import ADMIN_HEADERS, bearer, put_tier
from tests.conftest import TEST_KEY_PREFIX, delete_keys


def in_app(api, function, *args):
    """Run ``function(*args)`` on the app's own event loop (the test client's portal)."""
    return api.blocking_portal.call(function, *args)


def saver(api):
    return api.app.state.services.carts.saved


async def add(api, headers: dict, tier_id: str, quantity: int):
    api.cookies.clear()
    response = await api.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def view(api, headers: dict) -> dict:
    api.cookies.clear()
    return (await api.get("/api/cart", headers=headers)).json()


async def inventory(api, tier_id: str) -> dict:
    return (await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def unreachable_pool() -> asyncpg.Pool:
    return await asyncpg.create_pool("postgresql://postgres@127.0.0.1:9/none", min_size=0, max_size=1)


async def redis_loses_everything(redis) -> None:
    """This run's keys gone, as after a restart without persistence (tiers reload on use)."""
    await delete_keys(redis, TEST_KEY_PREFIX)


async def test_a_lost_cart_is_held_again_where_seats_are_free_and_says_what_came_back_short(
    api, settings, redis, db_pool
):
    ga, vip = await put_tier(api, quantity_total=10), await put_tier(api, quantity_total=3, max_per_order=3)
    user = bearer(settings, "saved-1")
    await add(api, user, ga["id"], 2)
    await add(api, user, vip["id"], 3)
    assert in_app(api, saver(api).save_now) == 1
    saved = await db_pool.fetchval("SELECT parts FROM user_carts WHERE user_id = 'saved-1'")
    assert {t: q for part in msgspec.json.decode(saved).values() for t, q in part["l"].items()} == {
        ga["id"]: 2,
        vip["id"]: 3,
    }

    await redis_loses_everything(redis)
    await add(api, {}, vip["id"], 2)  # a guest takes two of the three VIP seats first
    restored = await view(api, user)

    assert {i["tier_id"]: i["quantity"] for i in restored["items"]} == {ga["id"]: 2, vip["id"]: 1}
    assert sorted(
        (line["tier_id"], line["wanted"], line["held"], line.get("reason")) for line in restored["restored"]["lines"]
    ) == sorted([(ga["id"], 2, 2, None), (vip["id"], 3, 1, "sold-out")])
    assert (await inventory(api, vip["id"]))["held"] == 3  # exactly the seats there are: nothing oversold
    again = await view(api, user)
    assert "restored" not in again and again["item_count"] == 3  # restored once


async def test_the_first_change_after_a_loss_keeps_its_line_and_brings_back_the_others(api, settings, redis):
    ga, vip = await put_tier(api, quantity_total=10), await put_tier(api, quantity_total=10)
    user = bearer(settings, "saved-2")
    await add(api, user, ga["id"], 2)
    await add(api, user, vip["id"], 1)
    in_app(api, saver(api).save_now)
    await redis_loses_everything(redis)

    changed = await add(api, user, ga["id"], 1)

    assert {i["tier_id"]: i["quantity"] for i in changed["items"]} == {ga["id"]: 1, vip["id"]: 1}
    assert [(line["tier_id"], line["held"]) for line in changed["restored"]["lines"]] == [(vip["id"], 1)]


async def test_saving_is_behind_the_request_a_postgresql_outage_delays_it_and_loses_nothing(api, settings, db_pool):
    tier = await put_tier(api, quantity_total=10)
    user = bearer(settings, "saved-3")
    carts = saver(api)
    real_pool = carts.pool
    carts.pool = in_app(api, unreachable_pool)
    try:
        answered = await add(api, user, tier["id"], 2)  # PostgreSQL down: the cart does not notice
        assert answered["item_count"] == 2
        assert in_app(api, carts.save_now) == 0  # kept for the next round
    finally:
        in_app(api, carts.pool.close)
        carts.pool = real_pool
    assert in_app(api, carts.save_now) == 1
    assert await db_pool.fetchval("SELECT count(*) FROM user_carts WHERE user_id = 'saved-3'") == 1


async def test_bought_seats_never_come_back_even_from_a_copy_read_before_the_checkout(api, settings, redis, db_pool):
    tier = await put_tier(api, quantity_total=10)
    user = bearer(settings, "saved-4")
    await add(api, user, tier["id"], 2)
    in_app(api, saver(api).save_now)
    stale = await db_pool.fetchrow("SELECT parts, saved_ms FROM user_carts WHERE user_id = 'saved-4'")
    assert (await api.post("/api/orders", json={"email": "u@example.com"}, headers=user)).status_code == 201

    # A write of the cart as read before the checkout, arriving after it: ignored.
    await db_pool.execute(SAVE, ["saved-4"], [stale["parts"]], [None], [stale["saved_ms"] + 1])
    await redis_loses_everything(redis)
    after = await view(api, user)

    assert after["item_count"] == 0 and "restored" not in after
    assert (await inventory(api, tier["id"]))["held"] == 0


async def test_expired_holds_and_an_emptied_cart_are_not_restored(api, settings, redis, db_pool):
    tier = await put_tier(api, quantity_total=10)
    expired, emptied = bearer(settings, "saved-5"), bearer(settings, "saved-6")
    await add(api, emptied, tier["id"], 1)
    assert (await api.delete("/api/cart", headers=emptied)).status_code == 200
    in_app(api, saver(api).save_now)
    await db_pool.execute(
        SAVE,
        ["saved-5"],
        [msgspec.json.encode({"e": {"x": now_ms() - 1, "l": {tier["id"]: 2}}}).decode()],
        [None],
        [now_ms()],
    )
    await redis_loses_everything(redis)

    for user in (expired, emptied):
        after = await view(api, user)
        assert after["item_count"] == 0 and "restored" not in after
    assert (await inventory(api, tier["id"]))["held"] == 0


async def test_a_guest_cart_is_never_saved(api, db_pool):
    tier = await put_tier(api, quantity_total=10)
    await add(api, {}, tier["id"], 1)
    in_app(api, saver(api).save_now)
    assert await db_pool.fetchval("SELECT count(*) FROM user_carts") == 0
