"""POST /api/cart/merge: a signed-in user takes over their guest cart, against real Redis."""

from __future__ import annotations

import json
import time
import uuid

import msgspec

from service.keys import Keys
from service.redis.scripts import Scripts
from tests.api import ADMIN_HEADERS, api_client, bearer, put_tier


async def guest_add(api, tier_id: str, quantity: int, token: str | None = None) -> str:
    api.cookies.clear()
    headers = {"X-Cart-Token": token} if token else {}
    response = await api.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=headers)
    assert response.status_code in (200, 201), response.text
    return token or response.headers["x-cart-token"]


async def user_add(api, settings, user: str, tier_id: str, quantity: int) -> None:
    api.cookies.clear()
    response = await api.post(
        "/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=bearer(settings, user)
    )
    assert response.status_code in (200, 201), response.text


async def merge(api, settings, user: str | None, token: str | None):
    api.cookies.clear()
    headers = bearer(settings, user) if user else {}
    if token:
        headers["X-Cart-Token"] = token
    return await api.post("/api/cart/merge", headers=headers)


async def cart(api, headers: dict) -> dict:
    api.cookies.clear()
    return (await api.get("/api/cart", headers=headers)).json()


def lines(view: dict) -> dict[str, int]:
    return {item["tier_id"]: item["quantity"] for item in view["items"]}


async def held(api, tier_id: str) -> int:
    response = await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)
    return response.json()["inventory"]["held"]


async def test_lines_add_up_and_the_guest_cart_is_emptied(api, settings):
    a, b, c = [await put_tier(api, event_id=str(uuid.uuid4()), quantity_total=20) for _ in range(3)]
    token = await guest_add(api, a["id"], 2)
    await guest_add(api, c["id"], 1, token)
    await user_add(api, settings, "ana", a["id"], 1)
    await user_add(api, settings, "ana", b["id"], 3)

    response = await merge(api, settings, "ana", token)

    assert response.status_code == 200, response.text
    merged = response.json()
    assert lines(merged) == {a["id"]: 3, b["id"]: 3, c["id"]: 1}
    assert merged["capped"] == [] and merged["not_merged"] == []
    assert merged["item_count"] == 7 and merged["status"] == "open"
    assert lines(await cart(api, bearer(settings, "ana"))) == lines(merged)
    assert (await cart(api, {"X-Cart-Token": token}))["status"] == "empty"
    assert [await held(api, t["id"]) for t in (a, b, c)] == [3, 3, 1]


async def test_lines_over_the_tiers_limit_are_capped_reported_and_released(api, settings):
    tier = await put_tier(api, quantity_total=20, max_per_order=4)
    token = await guest_add(api, tier["id"], 3)
    await user_add(api, settings, "bo", tier["id"], 3)
    assert await held(api, tier["id"]) == 6

    merged = (await merge(api, settings, "bo", token)).json()

    assert lines(merged) == {tier["id"]: 4}
    assert merged["capped"] == [{"tier_id": tier["id"], "requested": 6, "kept": 4}]
    assert await held(api, tier["id"]) == 4


async def test_held_equals_the_sum_of_the_parts_after_merges_of_many_carts(api, settings, redis):
    event = str(uuid.uuid4())
    one, two = [await put_tier(api, event_id=event, quantity_total=50, max_per_order=5) for _ in range(2)]
    for user, (q1, q2) in {"cy": (2, 4), "di": (5, 1), "ed": (0, 3)}.items():
        token = await guest_add(api, one["id"], 3)
        await guest_add(api, two["id"], 2, token)
        if q1:
            await user_add(api, settings, user, one["id"], q1)
        await user_add(api, settings, user, two["id"], q2)
        assert (await merge(api, settings, user, token)).status_code == 200
    await guest_add(api, one["id"], 1)  # an unmerged guest cart

    parts = await redis.hgetall(Keys(settings.key_prefix).event(event).carts)
    in_parts = {one["id"]: 0, two["id"]: 0}
    for raw in parts.values():
        for tier_id, quantity in json.loads(raw)["l"].items():
            in_parts[tier_id] += quantity
    assert in_parts == {one["id"]: 5 + 5 + 3 + 1, two["id"]: 5 + 3 + 5}
    assert {t: await held(api, t) for t in in_parts} == in_parts


async def test_merging_again_changes_nothing(api, settings):
    tier = await put_tier(api, quantity_total=20)
    token = await guest_add(api, tier["id"], 2)
    first = (await merge(api, settings, "fa", token)).json()
    second = (await merge(api, settings, "fa", token)).json()
    assert lines(first) == lines(second) == {tier["id"]: 2}
    assert await held(api, tier["id"]) == 2


async def test_a_guest_cart_in_another_currency_is_refused_and_nothing_changes(api, settings):
    vnd, usd = await put_tier(api, quantity_total=20), await put_tier(api, quantity_total=20, currency="USD", price=25)
    token = await guest_add(api, usd["id"], 2)
    await user_add(api, settings, "gu", vnd["id"], 1)

    response = await merge(api, settings, "gu", token)

    assert response.status_code == 409
    assert (
        response.json() | {"code": "currency-mismatch", "cart_currency": "VND", "guest_currency": "USD"}
        == response.json()
    )
    assert lines(await cart(api, {"X-Cart-Token": token})) == {usd["id"]: 2}
    assert lines(await cart(api, bearer(settings, "gu"))) == {vnd["id"]: 1}
    assert (await held(api, usd["id"]), await held(api, vnd["id"])) == (2, 1)


async def test_a_guest_cart_in_another_currency_merges_into_an_empty_user_cart(api, settings):
    usd = await put_tier(api, quantity_total=20, currency="USD", price=25)
    token = await guest_add(api, usd["id"], 2)
    merged = (await merge(api, settings, "ha", token)).json()
    assert merged["currency"] == "USD" and lines(merged) == {usd["id"]: 2}


async def test_a_part_of_a_running_checkout_is_not_merged_and_is_reported(api, settings, redis):
    busy, free = await put_tier(api, quantity_total=20), await put_tier(api, quantity_total=20)
    token = await guest_add(api, busy["id"], 2)
    await guest_add(api, free["id"], 1, token)
    now = int(time.time() * 1000)
    scripts = Scripts(redis, Keys(settings.key_prefix))
    assert await scripts.checkout_lock(token.split(".")[1], "a running checkout", 60_000)
    begun = await scripts.checkout_begin(
        cart_id=token.split(".")[1],
        event_ids=[busy["event_id"]],
        order_id=str(uuid.uuid4()),
        replace="",
        now_ms=now,
        deadline_ms=now + 60_000,
    )
    assert begun[busy["event_id"]].result == "ok"

    response = await merge(api, settings, "io", token)

    merged = response.json()
    assert response.status_code == 200 and lines(merged) == {free["id"]: 1}
    assert merged["not_merged"] == [{"event_id": busy["event_id"], "reason": "guest-checkout"}]
    assert "set-cookie" not in response.headers  # the guest token still names a cart
    assert (await cart(api, {"X-Cart-Token": token}))["status"] == "checkout"
    assert (await held(api, busy["id"]), await held(api, free["id"])) == (2, 1)


async def test_a_part_left_in_checkout_by_an_order_that_never_committed_is_reopened_and_merged(api, settings, redis):
    left, free = await put_tier(api, quantity_total=20), await put_tier(api, quantity_total=20)
    token = await guest_add(api, left["id"], 2)
    await guest_add(api, free["id"], 1, token)
    now = int(time.time() * 1000)
    await Scripts(redis, Keys(settings.key_prefix)).checkout_begin(
        cart_id=token.split(".")[1],
        event_ids=[left["event_id"]],
        order_id=str(uuid.uuid4()),
        replace="",
        now_ms=now,
        deadline_ms=now + 60_000,
    )

    response = await merge(api, settings, "ai", token)

    merged = response.json()
    assert response.status_code == 200 and lines(merged) == {left["id"]: 2, free["id"]: 1}
    assert merged["not_merged"] == []
    assert (await held(api, left["id"]), await held(api, free["id"])) == (2, 1)


async def test_new_lines_over_the_parts_line_limit_are_released(settings, clean_state):
    two_lines = msgspec.structs.replace(settings, max_lines_per_cart=2)
    async with api_client(two_lines) as api:
        event = str(uuid.uuid4())
        a, b, c = [await put_tier(api, event_id=event, quantity_total=20) for _ in range(3)]
        first, second = sorted([b, c], key=lambda t: t["id"])  # guest lines merge in tier id order
        token = await guest_add(api, first["id"], 1)
        await guest_add(api, second["id"], 2, token)
        await user_add(api, settings, "jo", a["id"], 1)

        merged = (await merge(api, settings, "jo", token)).json()

        assert lines(merged) == {a["id"]: 1, first["id"]: 1}
        assert merged["capped"] == [{"tier_id": second["id"], "requested": 2, "kept": 0}]
        assert await held(api, second["id"]) == 0


async def test_merge_needs_a_signed_in_user_and_a_valid_guest_token(api, settings):
    tier = await put_tier(api, quantity_total=20)
    token = await guest_add(api, tier["id"], 1)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    anonymous = await merge(api, settings, None, token)
    no_token = await merge(api, settings, "ka", None)
    wrong = await merge(api, settings, "ka", forged)

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    assert (no_token.status_code, no_token.json()["code"]) == (422, "validation-error")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invalid-cart-token")
    assert lines(await cart(api, {"X-Cart-Token": token})) == {tier["id"]: 1}
