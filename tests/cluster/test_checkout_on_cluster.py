"""A checkout on a 3-master cluster: the cart's parts on two masters and its meta and lock
on a third slot move to checkout, the order commits in PostgreSQL, the parts are applied."""

from __future__ import annotations

import pytest

from tests.api import ADMIN_HEADERS, put_tier
from tests.cluster.conftest import event_on

pytestmark = pytest.mark.usefixtures("clean_state")

BUYER = {"email": "buyer@example.com", "name": "Lan Nguyen"}


async def inventory(api, tier_id: str) -> dict:
    return (await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).json()["inventory"]


async def test_a_cart_on_two_masters_checks_out_into_one_order(api, redis_cluster, db_pool):
    one = await put_tier(
        api, event_id=event_on(redis_cluster, redis_cluster.ports[0]), quantity_total=10, price=250_000
    )
    two = await put_tier(api, event_id=event_on(redis_cluster, redis_cluster.ports[1]), quantity_total=5, price=900_000)
    added = await api.post("/api/cart/items", json={"tier_id": one["id"], "quantity": 3})
    cart = {"X-Cart-Token": added.headers["x-cart-token"]}
    api.cookies.clear()
    added = await api.post("/api/cart/items", json={"tier_id": two["id"], "quantity": 1}, headers=cart)
    assert added.status_code == 200

    response = await api.post("/api/orders", json=BUYER, headers={**cart, "Idempotency-Key": "cluster-1"})

    assert response.status_code == 201, response.text
    order = response.json()
    assert order["total"] == 3 * 250_000 + 900_000 and len(order["tickets"]) == 4
    assert {(item["tier_id"], item["quantity"]) for item in order["items"]} == {(one["id"], 3), (two["id"], 1)}
    assert await inventory(api, one["id"]) == {"total": 10, "sold": 3, "held": 0, "available": 7, "sold_db": 3}
    assert await inventory(api, two["id"]) == {"total": 5, "sold": 1, "held": 0, "available": 4, "sold_db": 1}
    assert (await api.get("/api/cart", headers=cart)).json()["item_count"] == 0

    again = await api.post("/api/orders", json=BUYER, headers={**cart, "Idempotency-Key": "cluster-1"})
    assert again.status_code == 200 and again.json()["id"] == order["id"]
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 1
