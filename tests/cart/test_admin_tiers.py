"""Admin catalogue sync: create, update by the version rule, refuse what cannot change."""

from __future__ import annotations

import uuid

from tests.api import ADMIN_HEADERS, put_tier


async def test_admin_routes_need_the_key(api):
    tier_id = str(uuid.uuid4())
    for headers in ({}, {"X-Admin-Key": "wrong"}):
        response = await api.put(f"/api/admin/tiers/{tier_id}", json={}, headers=headers)
        assert response.status_code == 401 and response.json()["code"] == "unauthorized"
        assert (await api.get(f"/api/admin/tiers/{tier_id}", headers=headers)).status_code == 401


async def test_create_then_update_bumps_the_version_and_reaches_redis(api):
    tier = await put_tier(api, quantity_total=10)
    assert tier["version"] == 1
    same = await api.put(
        f"/api/admin/tiers/{tier['id']}",
        headers=ADMIN_HEADERS,
        json={
            "event_id": tier["event_id"],
            "name": tier["name"],
            "price": tier["price"],
            "currency": "VND",
            "quantity_total": 10,
            "max_per_order": 6,
        },
    )
    assert same.status_code == 200 and same.json()["version"] == 1  # nothing changed
    updated = await put_tier(api, tier_id=tier["id"], event_id=tier["event_id"], quantity_total=20)
    assert updated["version"] == 2
    view = (await api.get(f"/api/admin/tiers/{tier['id']}", headers=ADMIN_HEADERS)).json()
    assert view["inventory"]["total"] == 20


async def test_event_and_currency_cannot_change(api):
    tier = await put_tier(api)
    moved = await api.put(
        f"/api/admin/tiers/{tier['id']}",
        headers=ADMIN_HEADERS,
        json={
            "event_id": str(uuid.uuid4()),
            "name": "x",
            "price": 1,
            "currency": "VND",
            "quantity_total": 1,
            "max_per_order": 1,
        },
    )
    assert moved.status_code == 409
    recurrency = await api.put(
        f"/api/admin/tiers/{tier['id']}",
        headers=ADMIN_HEADERS,
        json={
            "event_id": tier["event_id"],
            "name": "x",
            "price": 1,
            "currency": "USD",
            "quantity_total": 1,
            "max_per_order": 1,
        },
    )
    assert recurrency.status_code == 409


async def test_total_cannot_go_below_sold(api, db_pool):
    tier = await put_tier(api, quantity_total=10)
    await db_pool.execute(
        "UPDATE ticket_tiers SET quantity_sold = 5, sold_version = sold_version + 1 WHERE id = $1",
        uuid.UUID(tier["id"]),
    )
    response = await api.put(
        f"/api/admin/tiers/{tier['id']}",
        headers=ADMIN_HEADERS,
        json={
            "event_id": tier["event_id"],
            "name": "x",
            "price": 1,
            "currency": "VND",
            "quantity_total": 4,
            "max_per_order": 1,
        },
    )
    assert response.status_code == 409 and response.json()["sold"] == 5


async def test_bad_definitions_are_422(api):
    tier_id = str(uuid.uuid4())
    base = {
        "event_id": str(uuid.uuid4()),
        "name": "x",
        "price": 1,
        "currency": "VND",
        "quantity_total": 1,
        "max_per_order": 1,
    }
    for change in (
        {"currency": "vnd"},
        {"price": -1},
        {"max_per_order": 0},
        {"name": ""},
        {"sales_start": "2030-01-02T00:00:00Z", "sales_end": "2030-01-01T00:00:00Z"},
        {"sales_start": "2030-01-02T00:00:00"},
        {"extra": 1},
    ):
        response = await api.put(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS, json={**base, **change})
        assert response.status_code == 422, (change, response.text)
    assert (await api.get(f"/api/admin/tiers/{tier_id}", headers=ADMIN_HEADERS)).status_code == 404


async def test_a_lowered_total_blocks_new_holds_but_keeps_live_ones(api):
    tier = await put_tier(api, quantity_total=5)
    api.cookies.clear()
    held = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 4})
    assert held.status_code == 201
    await put_tier(api, tier_id=tier["id"], event_id=tier["event_id"], quantity_total=2)
    api.cookies.clear()
    refused = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    assert refused.status_code == 409 and refused.json()["available"] == 0
    api.cookies.clear()
    still = await api.get("/api/cart", headers={"X-Cart-Token": held.headers["x-cart-token"]})
    assert still.json()["item_count"] == 4


async def test_sale_window_and_status(api):
    closed = await put_tier(api, sales_end="2020-01-01T00:00:00Z", sales_start="2019-01-01T00:00:00Z")
    future = await put_tier(api, sales_start="2099-01-01T00:00:00Z")
    inactive = await put_tier(api, active=False)
    for tier, code, status in (
        (closed, "sale-closed", "closed"),
        (future, "sale-not-open", "not-open"),
        (inactive, "sale-closed", "inactive"),
    ):
        api.cookies.clear()
        response = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
        assert response.status_code == 409 and response.json()["code"] == code
        assert (await api.get(f"/api/tiers/{tier['id']}/availability")).json()["status"] == status
