"""GET /api/orders/{id} for its owner only (the user, or a guest with the order's token),
404 for everyone else; GET /api/orders, a user's orders page by page."""

from __future__ import annotations

import uuid

import pytest

from tests.api import bearer, put_tier

BUYER = {"email": "reader@example.com"}


async def guest_order(client, tier_id: str) -> tuple[dict, dict[str, str]]:
    """A guest's order and the cart headers that made it."""
    added = await client.post("/api/cart/items", json={"tier_id": tier_id, "quantity": 1})
    client.cookies.clear()
    cart = {"X-Cart-Token": added.headers["x-cart-token"]}
    response = await client.post("/api/orders", json=BUYER, headers=cart)
    assert response.status_code == 201, response.text
    return response.json(), cart


async def user_order(client, settings, tier_id: str, user_id: str, quantity: int = 1) -> dict:
    headers = bearer(settings, user_id)
    assert (
        await client.post("/api/cart/items", json={"tier_id": tier_id, "quantity": quantity}, headers=headers)
    ).status_code in (200, 201)
    response = await client.post("/api/orders", json=BUYER, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_guest_reads_their_order_with_its_token(client):
    tier = await put_tier(client)
    order, _ = await guest_order(client, tier["id"])

    response = await client.get(f"/api/orders/{order['id']}", headers={"X-Order-Token": order["access_token"]})

    assert response.status_code == 200
    expected = {k: v for k, v in order.items() if k != "access_token"}
    assert response.json() == expected


async def test_a_user_reads_their_own_order(client, settings):
    tier = await put_tier(client)
    order = await user_order(client, settings, tier["id"], "owner")

    response = await client.get(f"/api/orders/{order['id']}", headers=bearer(settings, "owner"))

    assert response.status_code == 200 and response.json()["id"] == order["id"]


async def test_everyone_else_gets_404(client, settings):
    tier = await put_tier(client)
    guests, other_cart = await guest_order(client, tier["id"])
    mine, _ = await guest_order(client, tier["id"])
    users = await user_order(client, settings, tier["id"], "owner")

    attempts = {
        "no credentials": (guests["id"], {}),
        "another guest's cart token": (mine["id"], other_cart),
        "another order's token": (guests["id"], {"X-Order-Token": mine["access_token"]}),
        "a wrong token": (guests["id"], {"X-Order-Token": guests["access_token"][:-2] + "xx"}),
        "a signed-in stranger on a guest order": (guests["id"], bearer(settings, "stranger")),
        "another user": (users["id"], bearer(settings, "stranger")),
        "a guest token on a user's order": (users["id"], {"X-Order-Token": guests["access_token"]}),
        "an unknown id": (str(uuid.uuid4()), bearer(settings, "owner")),
        "a malformed id": ("not-a-uuid", bearer(settings, "owner")),
    }
    for what, (order_id, headers) in attempts.items():
        response = await client.get(f"/api/orders/{order_id}", headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "not-found"), what


async def test_a_forged_bearer_token_is_refused_401(client):
    response = await client.get(f"/api/orders/{uuid.uuid4()}", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


async def test_a_user_lists_their_orders_newest_first_page_by_page(client, settings):
    tier = await put_tier(client, max_per_order=10)
    placed = [await user_order(client, settings, tier["id"], "lister", quantity=q) for q in (1, 2, 3)]
    await user_order(client, settings, tier["id"], "someone-else")
    headers = bearer(settings, "lister")

    first = (await client.get("/api/orders?limit=2", headers=headers)).json()
    second = (await client.get(f"/api/orders?limit=2&cursor={first['next_cursor']}", headers=headers)).json()

    listed = first["orders"] + second["orders"]
    assert [o["id"] for o in listed] == [o["id"] for o in reversed(placed)]
    assert [o["item_count"] for o in listed] == [3, 2, 1]
    assert listed[0]["total"] == placed[-1]["total"] and listed[0]["status"] == "pending_payment"
    assert second["next_cursor"] is None


@pytest.mark.parametrize("query, status", [("", 401), ("?cursor=%%%", 422), ("?limit=0", 422)])
async def test_listing_needs_a_user_and_a_cursor_it_gave_out(client, settings, query, status):
    headers = bearer(settings, "lister") if status != 401 else {}
    response = await client.get(f"/api/orders{query}", headers=headers)
    assert response.status_code == status
