"""Promo codes through checkout (POST /api/orders), in process on real Redis and PostgreSQL:
the order carries the quote, the use is counted once, and a used-up code is refused with
the buyer's seats still held."""

from __future__ import annotations

import asyncio
import uuid

from service.promo.service import customer_key
from tests.api import ADMIN_HEADERS, put_tier

BUYER = {"email": "Buyer@Example.com"}


async def define(api, code: str, **fields) -> None:
    body = {"code": code, "kind": "percent", "value": 10} | fields
    response = await api.post("/api/admin/promo-codes", json=body, headers=ADMIN_HEADERS)
    assert response.status_code in (200, 201), response.text


async def cart_with_code(api, tier: dict, quantity: int, code: str) -> dict[str, str]:
    added = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": quantity}, headers={})
    assert added.status_code == 201, added.text
    cart = {"X-Cart-Token": added.headers["x-cart-token"]}
    applied = await api.post("/api/cart/promo", json={"code": code}, headers=cart)
    assert applied.status_code == 200, applied.text
    return cart


async def test_an_order_carries_the_discount_per_line_and_counts_the_use(api, db_pool):
    event = str(uuid.uuid4())
    scoped = await put_tier(api, event_id=event, price=100_000)
    other = await put_tier(api, event_id=event, price=50_000)
    await define(api, "VIP15", value=15, tier_ids=[scoped["id"]], max_uses_per_customer=1)
    cart = await cart_with_code(api, scoped, 3, "vip15")
    api.cookies.clear()
    await api.post("/api/cart/items", json={"tier_id": other["id"], "quantity": 1}, headers=cart)

    api.cookies.clear()
    response = await api.post("/api/orders", json=BUYER, headers=cart)

    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["subtotal"], order["discount"], order["total"], order["promo_code"]) == (
        350_000,
        45_000,
        305_000,
        "VIP15",
    )
    assert {i["tier_id"]: i["discount"] for i in order["items"]} == {scoped["id"]: 45_000, other["id"]: 0}
    assert order["payment"]["amount"] == 305_000
    redemption = await db_pool.fetchrow("SELECT * FROM promo_redemptions")
    assert redemption["order_id"] == uuid.UUID(order["id"]) and redemption["discount"] == 45_000
    assert redemption["customer_key"] == customer_key(None, "buyer@example.com")
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'VIP15'") == 1


async def test_a_buyer_past_their_own_limit_is_refused_at_checkout_and_keeps_the_seats(api, db_pool):
    tier = await put_tier(api, quantity_total=10)
    await define(api, "ONCE", max_uses_per_customer=1)
    first = await cart_with_code(api, tier, 1, "ONCE")
    api.cookies.clear()
    assert (await api.post("/api/orders", json=BUYER, headers=first)).status_code == 201

    api.cookies.clear()
    second = await cart_with_code(api, tier, 2, "ONCE")  # a guest cart: the e-mail is the customer
    api.cookies.clear()
    refused = await api.post("/api/orders", json={"email": "buyer@EXAMPLE.com"}, headers=second)
    assert refused.status_code == 409 and refused.json()["code"] == "promo-exhausted", refused.text
    api.cookies.clear()
    view = (await api.get("/api/cart", headers=second)).json()
    assert (view["status"], view["item_count"], view["promo_code"]) == ("open", 2, "ONCE")


async def test_100_concurrent_checkouts_with_a_code_limited_to_10_make_10_orders_with_it(api, db_pool):
    tier = await put_tier(api, quantity_total=100, max_per_order=1, price=200_000)
    await define(api, "TEN", kind="fixed", value=20_000, currency="VND", max_uses=10)
    carts = []
    for _ in range(100):
        api.cookies.clear()
        carts.append(await cart_with_code(api, tier, 1, "TEN"))
    api.cookies.clear()

    responses = await asyncio.gather(
        *(
            api.post("/api/orders", json={"email": f"buyer{i}@example.com"}, headers=cart)
            for i, cart in enumerate(carts)
        )
    )

    created = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(created) == 10, [r.text for r in refused if r.status_code != 409][:3]
    assert all(r.json()["promo_code"] == "TEN" and r.json()["discount"] == 20_000 for r in created)
    assert all(r.status_code == 409 and r.json()["code"] == "promo-exhausted" for r in refused)
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'TEN'") == 10
    assert await db_pool.fetchval("SELECT count(*) FROM orders WHERE promo_code = 'TEN'") == 10
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 10

    inventory = (await api.get(f"/api/admin/tiers/{tier['id']}", headers=ADMIN_HEADERS)).json()["inventory"]
    assert (inventory["sold"], inventory["held"], inventory["sold_db"]) == (10, 90, 10)
    views = await asyncio.gather(
        *(
            api.get("/api/cart", headers=refused_cart)
            for refused_cart, response in zip(carts, responses, strict=True)
            if response.status_code == 409
        )
    )
    assert all(v.json()["status"] == "open" and v.json()["item_count"] == 1 for v in views)


async def test_cancelling_an_order_gives_its_use_back(api, db_pool):
    tier = await put_tier(api)
    await define(api, "ONE", max_uses=1)
    cart = await cart_with_code(api, tier, 1, "ONE")
    api.cookies.clear()
    order = (await api.post("/api/orders", json=BUYER, headers=cart)).json()
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'ONE'") == 1

    cancelled = await api.post(f"/api/admin/orders/{order['id']}/cancel", headers=ADMIN_HEADERS)
    assert cancelled.status_code == 200, cancelled.text
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'ONE'") == 0
    assert await db_pool.fetchval("SELECT released_at IS NOT NULL FROM promo_redemptions") is True


async def test_a_fixed_code_redefined_in_another_currency_is_refused_at_checkout(api, db_pool):
    """Checkout validates the code again: one applied in VND, then made a USD amount by an
    admin, no longer applies to the VND cart (reason currency); the seats stay held."""
    tier = await put_tier(api, price=200_000)
    await define(api, "FLAT", kind="fixed", value=50_000, currency="VND")
    cart = await cart_with_code(api, tier, 1, "FLAT")
    await define(api, "FLAT", kind="fixed", value=5, currency="USD")

    api.cookies.clear()
    refused = await api.post("/api/orders", json=BUYER, headers=cart)

    assert refused.status_code == 422 and refused.json()["code"] == "invalid-promo", refused.text
    assert (refused.json()["reason"], refused.json()["currency"]) == ("currency", "USD")
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 0
    assert await db_pool.fetchval("SELECT used FROM promo_codes WHERE code = 'FLAT'") == 0
    api.cookies.clear()
    view = (await api.get("/api/cart", headers=cart)).json()
    assert (view["status"], view["item_count"], view["promo_code"], view["discount"]) == ("open", 1, "FLAT", 0)
