"""A body is taken as the OpenAPI document types it: a value only a lenient conversion would
take (``"quantity": "2"``, ``"active": 0``, a number for a date-time) is a 422
``validation-error`` naming the field, on every route with a body, the fast lane's routes
too, and never before the admin key is checked (``service/http/bodies.py``)."""

from __future__ import annotations

import uuid

import pytest

from service.app import create_app
from service.http.bodies import strict_body
from tests.api import ADMIN_HEADERS, put_tier, tier_body

PROBLEM = "application/problem+json"


def _refused(response, field: str) -> bool:
    body = response.json()
    return (
        response.status_code == 422
        and response.headers["content-type"].startswith(PROBLEM)
        and (body["code"], body.get("field")) == ("validation-error", field)
    )


def test_every_route_with_a_body_takes_it_strictly(settings):
    with_body = [
        (route.path, handler)
        for route in create_app(settings).routes
        for handler in getattr(route, "route_handlers", [])
        if "data" in handler.parsed_fn_signature.parameters
    ]
    assert len(with_body) >= 6
    for path, handler in with_body:
        assert handler.resolve_before_request() is strict_body, path


async def test_the_cart_takes_no_quantity_as_text(api):
    tier = (await put_tier(api))["id"]
    added = await api.post("/api/cart/items", json={"tier_id": tier, "quantity": "2"})
    assert _refused(added, "quantity"), added.text
    assert "Expected `int`, got `str`" in added.json()["detail"]
    token = (await api.post("/api/cart/items", json={"tier_id": tier, "quantity": 1})).headers["x-cart-token"]
    changed = await api.put(f"/api/cart/items/{tier}", json={"quantity": "3"}, headers={"X-Cart-Token": token})
    assert _refused(changed, "quantity"), changed.text
    cart = (await api.get("/api/cart", headers={"X-Cart-Token": token})).json()
    assert cart["item_count"] == 1  # nothing the refused calls asked for was held


@pytest.mark.parametrize(
    ("field", "value"),
    [("active", 0), ("price", "500000"), ("sales_start", 1_900_000_000), ("quantity_total", 10.5)],
)
async def test_a_tier_takes_each_field_as_its_type(api, field, value):
    body = tier_body(**{"quantity_total": 10, "max_per_order": 2, field: value})
    response = await api.put(f"/api/admin/tiers/{uuid.uuid4()}", json=body, headers=ADMIN_HEADERS)
    assert _refused(response, field), response.text


async def test_a_whole_number_written_with_a_fraction_is_an_integer(api):
    """JSON Schema's integer includes 2.0 and 1e1: a client true to the document may send them."""
    tier = (await put_tier(api, quantity_total=1e1))["id"]
    added = await api.post("/api/cart/items", json={"tier_id": tier, "quantity": 2.0})
    assert added.status_code in (200, 201) and added.json()["item_count"] == 2, added.text


async def test_a_promo_code_takes_its_value_as_a_number(api):
    response = await api.post(
        "/api/admin/promo-codes", json={"code": "TEXT10", "kind": "percent", "value": "10"}, headers=ADMIN_HEADERS
    )
    assert _refused(response, "value"), response.text
    # Without the key, nothing is said about the body.
    anonymous = await api.post("/api/admin/promo-codes", json={"code": "TEXT10", "kind": "percent", "value": "10"})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")


async def test_a_body_refused_either_way_is_answered_as_before(api):
    tier = (await put_tier(api))["id"]
    wrong = await api.post("/api/cart/items", json={"tier_id": tier, "quantity": [2]})
    assert _refused(wrong, "quantity") and "Expected `int`, got `array`" in wrong.json()["detail"]
    malformed = await api.post("/api/cart/items", content=b'{"tier_id": ')
    assert (malformed.status_code, malformed.json()["code"]) == (400, "bad-request")
