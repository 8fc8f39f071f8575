"""Applying and removing promo codes on a cart, through the Litestar client against real
Redis and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import msgspec

from service.promo.service import customer_key
from tests.api import ADMIN_HEADERS, api_client, bearer, put_tier

PROBLEM = "application/problem+json"


async def define(api, code: str = "SAVE10", **fields) -> dict:
    body = {"code": code, "kind": "percent", "value": 10} | fields
    response = await api.post("/api/admin/promo-codes", json=body, headers=ADMIN_HEADERS)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def cart_with(api, *lines: tuple[dict, int], headers: dict | None = None) -> dict[str, str]:
    """A cart holding the given (tier, quantity) lines; the headers that name it."""
    headers = dict(headers or {})
    for tier, quantity in lines:
        api.cookies.clear()
        added = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": quantity}, headers=headers)
        assert added.status_code in (200, 201), added.text
        if "x-cart-token" in added.headers:
            headers["X-Cart-Token"] = added.headers["x-cart-token"]
    return headers


async def apply(api, headers: dict, code: str):
    api.cookies.clear()
    return await api.post("/api/cart/promo", json={"code": code}, headers=headers)


def refusal(response) -> str:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == "invalid-promo"
    return response.json()["reason"]


async def test_a_code_takes_its_discount_off_the_cart_and_the_view_shows_it(api):
    tier = await put_tier(api, price=250_000)
    cart = await cart_with(api, (tier, 2))
    await define(api, "SAVE10")
    applied = await apply(api, cart, "  save10 ")
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert body["promo_code"] == "SAVE10"
    assert (body["subtotal"], body["discount"], body["total"]) == (500_000, 50_000, 450_000)
    api.cookies.clear()
    assert (await api.get("/api/cart", headers=cart)).json() == body


async def test_a_percent_discount_is_rounded_up_in_the_buyers_favour(api):
    tier = await put_tier(api, price=99_999)
    cart = await cart_with(api, (tier, 1))
    await define(api, "TEN")
    assert (await apply(api, cart, "TEN")).json()["discount"] == 10_000


async def test_a_fixed_code_never_makes_the_total_negative(api):
    tier = await put_tier(api, price=30_000)
    cart = await cart_with(api, (tier, 1))
    await define(api, "BIG", kind="fixed", value=1_000_000, currency="VND")
    body = (await apply(api, cart, "big")).json()
    assert (body["discount"], body["total"]) == (30_000, 0)


async def test_a_scoped_code_discounts_only_its_event(api):
    event = str(uuid.uuid4())
    mine, other = await put_tier(api, event_id=event, price=100_000), await put_tier(api, price=100_000)
    cart = await cart_with(api, (mine, 1), (other, 1))
    await define(api, "HALF", value=50, event_id=event)
    body = (await apply(api, cart, "HALF")).json()
    assert (body["subtotal"], body["discount"], body["total"]) == (200_000, 50_000, 150_000)


async def test_removing_the_code_restores_the_total(api):
    tier = await put_tier(api, price=100_000)
    cart = await cart_with(api, (tier, 1))
    await define(api)
    await apply(api, cart, "SAVE10")
    api.cookies.clear()
    removed = await api.delete("/api/cart/promo", headers=cart)
    assert removed.status_code == 200
    assert removed.json() | {"promo_code": None, "discount": 0, "total": 100_000} == removed.json()
    api.cookies.clear()
    assert (await api.delete("/api/cart/promo", headers=cart)).status_code == 200  # again: nothing to do


async def test_each_refusal_says_why_and_the_cart_keeps_its_code(api, db_pool):
    event = str(uuid.uuid4())
    tier = await put_tier(api, event_id=event, price=100_000)
    cart = await cart_with(api, (tier, 1))
    now = dt.datetime.now(dt.UTC)
    await define(api, "GOOD", value=5)
    await define(api, "OLD", ends_at=(now - dt.timedelta(minutes=1)).isoformat())
    await define(api, "LATER", starts_at=(now + dt.timedelta(days=1)).isoformat())
    await define(api, "ELSEWHERE", event_id=str(uuid.uuid4()))
    await define(api, "OTHERTIER", event_id=event, tier_ids=[str(uuid.uuid4())])
    await define(api, "BIGSPENDER", min_subtotal=100_001)
    await define(api, "OFF", active=False)
    await define(api, "DOLLARS", kind="fixed", value=100, currency="USD")
    await define(api, "GONE", max_uses=2)
    await db_pool.execute("UPDATE promo_codes SET used = 2 WHERE code = 'GONE'")
    assert (await apply(api, cart, "GOOD")).status_code == 200

    expected = {
        "NOPE": "not-found",
        "bad code!": "not-found",
        "OLD": "expired",
        "LATER": "not-started",
        "ELSEWHERE": "not-applicable",
        "OTHERTIER": "not-applicable",
        "BIGSPENDER": "below-minimum",
        "OFF": "inactive",
        "DOLLARS": "currency",
        "GONE": "exhausted",
    }
    for code, reason in expected.items():
        assert refusal(await apply(api, cart, code)) == reason, code
    api.cookies.clear()
    view = (await api.get("/api/cart", headers=cart)).json()
    assert (view["promo_code"], view["discount"]) == ("GOOD", 5_000)


async def test_a_fixed_code_applies_to_a_cart_in_its_own_currency_only(api):
    """The reported bug: 50,000 meant as VND took 100% off a USD cart."""
    tier = await put_tier(api, price=2_000, currency="USD")
    cart = await cart_with(api, (tier, 1))
    await define(api, "DONG50K", kind="fixed", value=50_000, currency="VND")
    await define(api, "FIVEBUCKS", kind="fixed", value=500, currency="USD")

    refused = await apply(api, cart, "dong50k")

    assert refusal(refused) == "currency"
    assert (refused.json()["currency"], refused.json()["cart_currency"]) == ("VND", "USD")
    api.cookies.clear()
    view = (await api.get("/api/cart", headers=cart)).json()
    assert (view["promo_code"], view["discount"], view["total"]) == (None, 0, 2_000)
    applied = await apply(api, cart, "fivebucks")
    assert applied.status_code == 200, applied.text
    assert (applied.json()["discount"], applied.json()["total"]) == (500, 1_500)


async def test_without_a_cart_a_code_does_not_apply_and_no_cart_is_made(api):
    await define(api)
    api.cookies.clear()
    response = await api.post("/api/cart/promo", json={"code": "SAVE10"})
    assert refusal(response) == "not-applicable"
    assert "x-cart-token" not in response.headers and "set-cookie" not in response.headers


async def test_a_code_switched_off_stops_discounting_the_cart_at_once(api):
    tier = await put_tier(api, price=100_000)
    cart = await cart_with(api, (tier, 1))
    await define(api, "SAVE10")
    assert (await apply(api, cart, "SAVE10")).json()["discount"] == 10_000
    await define(api, "SAVE10", active=False)
    api.cookies.clear()
    view = (await api.get("/api/cart", headers=cart)).json()
    assert (view["promo_code"], view["discount"], view["total"]) == ("SAVE10", 0, 100_000)


async def test_a_signed_in_buyer_past_their_own_limit_is_told_when_applying(api, settings, db_pool):
    tier = await put_tier(api)
    user = bearer(settings, "user-7")
    await cart_with(api, (tier, 1), headers=user)
    await define(api, "ONCE", max_uses_per_customer=1)
    await db_pool.execute(
        "INSERT INTO promo_customer_uses (code, customer_key, uses) VALUES ('ONCE', $1, 1)",
        customer_key("user-7", "ignored@example.com"),
    )
    assert refusal(await apply(api, user, "ONCE")) == "exhausted"


async def test_bad_bodies_are_422_validation_errors(api):
    api.cookies.clear()
    for body in ({}, {"code": ""}, {"code": 7}, {"code": "X", "more": 1}, {"code": "x" * 129}):
        response = await api.post("/api/cart/promo", json=body)
        assert response.status_code == 422 and response.json()["code"] == "validation-error", body


async def test_the_attempt_after_the_limit_is_429_with_retry_after(settings, clean_state):
    limited = msgspec.structs.replace(settings, promo_attempts_per_minute=3, promo_attempts_address_per_minute=3)
    async with api_client(limited) as api:
        tier = await put_tier(api)
        cart = await cart_with(api, (tier, 1))
        await define(api, "REAL")
        for guess in ("GUESS1", "GUESS2"):
            response = await apply(api, cart, guess)
            assert refusal(response) == "not-found"
            assert int(response.headers["ratelimit-limit"]) == 3
        allowed = await apply(api, cart, "REAL")
        assert allowed.status_code == 200 and allowed.headers["ratelimit-remaining"] == "0"

        refused = await apply(api, cart, "REAL")
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "rate-limited"
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-remaining"] == "0" and int(refused.headers["ratelimit-reset"]) >= 1

        another_cart = await cart_with(api, (tier, 1))  # the address's bucket is empty too
        assert (await apply(api, another_cart, "REAL")).status_code == 429


async def test_a_trusted_backend_speaking_for_many_buyers_is_limited_per_cart(settings, clean_state):
    trusted = msgspec.structs.replace(settings, promo_attempts_per_minute=2, trusted_service_key="backend-key")
    async with api_client(trusted) as api:
        tier = await put_tier(api)
        await define(api, "REAL")
        backend = {"X-Service-Key": "backend-key"}
        carts = [await cart_with(api, (tier, 1), headers=backend) for _ in range(3)]
        for cart in carts:  # six attempts from one address, two per cart: all counted per cart
            assert refusal(await apply(api, cart, "GUESS")) == "not-found"
            assert (await apply(api, cart, "REAL")).status_code == 200
        assert (await apply(api, carts[0], "REAL")).status_code == 429


async def test_the_promo_limit_speaks_for_promo_attempts_alone(settings, clean_state):
    both = msgspec.structs.replace(
        settings, promo_attempts_per_minute=5, rate_limit_per_minute=600, rate_limit_burst=100
    )
    async with api_client(both) as api:
        tier = await put_tier(api)
        cart = await cart_with(api, (tier, 1))
        await define(api)
        api.cookies.clear()
        assert (await api.get("/api/cart", headers=cart)).headers.get_list("ratelimit-limit") == ["100"]
        for response in (await apply(api, cart, "SAVE10"), await apply(api, cart, "NOPE")):
            assert response.headers.get_list("ratelimit-limit") == ["5"]  # not the general limit's too
            assert len(response.headers.get_list("ratelimit-remaining")) == 1


async def test_ten_buyers_behind_one_address_each_with_a_typo_are_not_refused_by_the_address(settings, clean_state):
    """Carrier-grade NAT: many buyers share one address. With the shipped limits (only the
    general limit turned on, as deployed), ten of them applying a code within a minute,
    each after one typo, are all answered; the cart stays the tight key."""
    deployed = msgspec.structs.replace(settings, rate_limit_per_minute=600)  # every other limit: its default
    async with api_client(deployed) as api:
        tier = await put_tier(api)
        await define(api, "SAVE10")
        buyers = [await cart_with(api, (tier, 1)) for _ in range(10)]  # one address: the test client's
        for cart in buyers:
            assert refusal(await apply(api, cart, "SAVE1O")) == "not-found"
            applied = await apply(api, cart, "SAVE10")
            assert applied.status_code == 200, applied.text
        for _ in range(8):  # one buyer's own cart still allows ten attempts a minute, no more
            assert (await apply(api, buyers[0], "SAVE10")).status_code == 200
        assert (await apply(api, buyers[0], "SAVE10")).status_code == 429
