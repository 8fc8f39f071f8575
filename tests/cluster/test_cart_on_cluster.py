"""The cart API on a 3-master Redis Cluster: a cart whose parts live on different masters,
with its own meta on a third slot, is added to, viewed, changed, emptied."""

from __future__ import annotations

import pytest

from tests.api import ADMIN_HEADERS, put_tier
from tests.cluster.conftest import event_on

pytestmark = pytest.mark.usefixtures("clean_state")


async def inventory(api, tier_id: str) -> dict:
    response = await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["inventory"]


async def test_a_cart_across_two_masters_is_added_viewed_set_removed_and_cleared(api, redis_cluster, services):
    first_port, second_port = redis_cluster.ports[:2]
    one = await put_tier(api, event_id=event_on(redis_cluster, first_port), quantity_total=10)
    two = await put_tier(api, event_id=event_on(redis_cluster, second_port), quantity_total=10)

    added = await api.post("/api/cart/items", json={"tier_id": one["id"], "quantity": 2})
    assert added.status_code == 201, added.text
    token = added.headers["x-cart-token"]
    headers = {"X-Cart-Token": token}
    api.cookies.clear()
    both = await api.post("/api/cart/items", json={"tier_id": two["id"], "quantity": 3}, headers=headers)
    assert both.status_code == 200, both.text  # 201 only when the cart is made
    assert both.json()["item_count"] == 5
    assert {item["tier_id"] for item in both.json()["items"]} == {one["id"], two["id"]}

    viewed = (await api.get("/api/cart", headers=headers)).json()
    assert viewed["item_count"] == 5 and viewed["subtotal"] == 5 * 500_000

    changed = await api.put(f"/api/cart/items/{two['id']}", json={"quantity": 1}, headers=headers)
    assert changed.status_code == 200 and changed.json()["item_count"] == 3
    assert (await inventory(api, two["id"]))["held"] == 1

    removed = await api.delete(f"/api/cart/items/{one['id']}", headers=headers)
    assert removed.status_code == 200 and removed.json()["item_count"] == 1
    assert (await inventory(api, one["id"]))["held"] == 0

    cleared = await api.delete("/api/cart", headers=headers)
    assert cleared.status_code == 200 and cleared.json()["status"] == "empty"
    for tier in (one, two):
        assert await inventory(api, tier["id"]) == {"total": 10, "sold": 0, "held": 0, "available": 10, "sold_db": 0}
    assert (await api.get("/api/cart", headers=headers)).json()["item_count"] == 0


async def test_sold_out_on_the_cluster_says_how_many_are_left(api):
    tier = await put_tier(api, quantity_total=3)
    assert (await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})).status_code == 201
    api.cookies.clear()
    refused = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})
    assert refused.status_code == 409
    assert refused.json()["code"] == "sold-out" and refused.json()["available"] == 1
