"""Admin promo code definitions through the Litestar client, against real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.api import ADMIN_HEADERS

PROBLEM = "application/problem+json"


async def post_code(api, **fields):
    body = {"code": "summer10", "kind": "percent", "value": 10} | fields
    return await api.post("/api/admin/promo-codes", json=body, headers=ADMIN_HEADERS)


async def test_a_code_is_created_upper_case_and_read_back_with_its_use_count(api):
    event, tier = str(uuid.uuid4()), str(uuid.uuid4())
    created = await post_code(
        api,
        code="  Summer10 ",
        event_id=event,
        tier_ids=[tier],
        min_subtotal=100_000,
        max_uses=50,
        max_uses_per_customer=1,
        starts_at="2030-01-01T00:00:00+07:00",
        ends_at="2030-02-01T00:00:00Z",
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["code"] == "SUMMER10" and body["used"] == 0 and body["active"] is True
    assert body["event_id"] == event and body["tier_ids"] == [tier] and body["max_uses_per_customer"] == 1
    read = await api.get("/api/admin/promo-codes/summer10", headers=ADMIN_HEADERS)
    assert read.status_code == 200 and read.json() == body


async def test_posting_an_existing_code_replaces_its_definition_and_keeps_its_count(api, db_pool):
    assert (await post_code(api, value=10)).status_code == 201
    await db_pool.execute("UPDATE promo_codes SET used = 4 WHERE code = 'SUMMER10'")
    updated = await post_code(api, code="SUMMER10", value=20, active=False)
    assert updated.status_code == 200
    assert updated.json() | {"value": 20, "active": False, "used": 4} == updated.json()


async def test_max_uses_cannot_go_below_the_uses_counted(api, db_pool):
    await post_code(api)
    await db_pool.execute("UPDATE promo_codes SET used = 4 WHERE code = 'SUMMER10'")
    refused = await post_code(api, max_uses=3)
    assert refused.status_code == 409 and refused.json()["used"] == 4
    assert (await post_code(api, max_uses=4)).status_code == 200


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"code": "two words"}, "A-Z"),
        ({"code": ""}, ""),
        ({"code": "x" * 65}, "64"),
        ({"kind": "percent", "value": 101}, "between 1 and 100"),
        ({"kind": "percent", "value": 0}, ""),
        ({"kind": "fixed", "value": 0, "currency": "VND"}, ""),
        ({"kind": "fixed", "value": 50_000}, "currency"),
        ({"kind": "percent", "value": 10, "currency": "VND"}, "no currency"),
        ({"kind": "fixed", "value": 50_000, "currency": "vnd"}, "currency"),
        ({"kind": "bogus"}, ""),
        ({"starts_at": "2030-01-01T00:00:00"}, "time zone"),
        ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}, "before"),
        ({"tier_ids": []}, "at least one"),
        ({"tier_ids": ["not-a-uuid"]}, ""),
        ({"min_subtotal": -1}, ""),
        ({"max_uses": 0}, ""),
        ({"max_uses_per_customer": 0}, ""),
        ({"surprise": 1}, ""),
    ],
)
async def test_bad_definitions_are_422_with_a_clear_detail_and_store_nothing(api, db_pool, fields, words):
    refused = await post_code(api, **fields)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert refused.json()["code"] == "validation-error" and words in refused.json()["detail"]
    assert await db_pool.fetchval("SELECT count(*) FROM promo_codes") == 0


async def test_a_fixed_code_shows_its_currency_and_a_percent_code_none(api):
    fixed = await post_code(api, code="flat", kind="fixed", value=50_000, currency="VND")
    assert fixed.status_code == 201, fixed.text
    assert (fixed.json()["kind"], fixed.json()["value"], fixed.json()["currency"]) == ("fixed", 50_000, "VND")
    read = await api.get("/api/admin/promo-codes/FLAT", headers=ADMIN_HEADERS)
    assert read.json() == fixed.json()
    assert (await post_code(api)).json()["currency"] is None

    switched = await post_code(api, code="flat", kind="percent", value=10)  # replaced: the currency goes
    assert switched.status_code == 200 and switched.json()["currency"] is None


async def test_a_fixed_code_without_a_currency_names_the_field(api, db_pool):
    refused = await post_code(api, kind="fixed", value=50_000)
    assert refused.status_code == 422 and refused.json()["field"] == "currency"
    assert await db_pool.fetchval("SELECT count(*) FROM promo_codes") == 0


async def test_admin_routes_need_the_admin_key(api):
    body = {"code": "X", "kind": "fixed", "value": 1}
    assert (await api.post("/api/admin/promo-codes", json=body)).status_code == 401
    assert (await api.post("/api/admin/promo-codes", json=body, headers={"X-Admin-Key": "wrong"})).status_code == 401
    assert (await api.get("/api/admin/promo-codes/X")).status_code == 401


async def test_an_unknown_or_malformed_code_is_404(api):
    assert (await api.get("/api/admin/promo-codes/NOPE", headers=ADMIN_HEADERS)).json()["code"] == "not-found"
    assert (await api.get("/api/admin/promo-codes/no%20pe", headers=ADMIN_HEADERS)).status_code == 404


async def test_the_openapi_document_shows_the_currency(api):
    schemas = (await api.get("/schema/openapi.json")).json()["components"]["schemas"]
    currency = schemas["PromoDefinition"]["properties"]["currency"]
    assert currency["pattern"] == "^[A-Z]{3}$" and "fixed codes only" in currency["description"]
    assert "currency" not in schemas["PromoDefinition"]["required"]
    assert "currency" in schemas["PromoCode"]["properties"] and "currency" in schemas["PromoCode"]["required"]
