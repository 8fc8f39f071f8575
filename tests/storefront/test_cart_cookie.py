"""The guest cart's token and the browser: a cart_token cookie the server no longer accepts
(its key retired after a rotation, an altered value) is dropped with its refusal, so a
browser, whose scripts cannot delete an HttpOnly cookie, starts a new cart instead of being
refused for the cookie's 30 days. A token the caller sends in X-Cart-Token is its own."""

from __future__ import annotations

import uuid

from litestar.testing import AsyncTestClient

from service.app import create_app
from service.http.identity import CLEAR_CART_COOKIE
from tests.api import put_tier


async def test_a_cart_cookie_that_no_longer_verifies_is_dropped_with_its_refusal(settings):
    assert CLEAR_CART_COOKIE == "cart_token=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
    for fast_lane in (True, False):
        async with AsyncTestClient(app=create_app(settings, fast_lane=fast_lane)) as api:
            tier = await put_tier(api)
            forged = f"v1.{uuid.uuid4()}.signed-with-a-retired-key"
            for method, path, body in (
                ("GET", "/api/cart", None),
                ("POST", "/api/cart/items", {"tier_id": tier["id"], "quantity": 1}),
            ):
                api.cookies.set("cart_token", forged)
                refused = await api.request(method, path, json=body)
                assert refused.status_code == 401 and refused.json()["code"] == "invalid-cart-token"
                assert refused.headers["set-cookie"] == CLEAR_CART_COOKIE, (fast_lane, method)
                api.cookies.clear()  # as a browser does (tests/storefront/test_journeys.py)
            made = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
            assert made.status_code == 201  # a new cart
            by_header = await api.get("/api/cart", headers={"X-Cart-Token": forged})
            assert by_header.status_code == 401 and "set-cookie" not in by_header.headers  # the caller's own
