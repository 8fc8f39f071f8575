"""A refused body names the offending field: ``field`` and each error's ``key`` are the
field's path in the body (``quantity``, ``tier_ids[1]``, ``items[0].x``), whether the field is
unknown, missing, of the wrong type or out of bounds; through the fast lane and the Litestar
handlers alike (docs/security.md, "Bad input never costs anything")."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient
from msgspec import Meta

from service.http.problems import EXCEPTION_HANDLERS
from tests.api import ADMIN_HEADERS

TIER = str(uuid.uuid4())
PROBLEM = "application/problem+json"

# (method, path, body, headers) -> (field, message): one of each kind, on the fast lane's
# routes (add, set) and on routes of Litestar handlers only.
CASES = {
    "unknown": (
        ("POST", "/api/cart/items", {"tier_id": TIER, "quantity": 1, "colour": "red"}, {}),
        ("colour", "Object contains unknown field `colour`"),
    ),
    "missing": (
        ("POST", "/api/cart/items", {"tier_id": TIER}, {}),
        ("quantity", "Object missing required field `quantity`"),
    ),
    "wrong type": (
        ("POST", "/api/cart/items", {"tier_id": TIER, "quantity": [2]}, {}),
        ("quantity", "Expected `int`, got `array`"),
    ),
    "out of bounds": (
        ("PUT", f"/api/cart/items/{TIER}", {"quantity": 10_001}, {}),
        ("quantity", "Expected `int` <= 10000"),
    ),
    "unknown, set": (
        ("PUT", f"/api/cart/items/{TIER}", {"quantity": 1, "q": 1}, {}),
        ("q", "Object contains unknown field `q`"),
    ),
    "bad uuid": (("POST", "/api/cart/items", {"tier_id": "seat-1", "quantity": 1}, {}), ("tier_id", "Invalid UUID")),
    "unknown, promo": (
        ("POST", "/api/admin/promo-codes", {"code": "A", "kind": "percent", "value": 5, "typo": 1}, ADMIN_HEADERS),
        ("typo", "Object contains unknown field `typo`"),
    ),
    "missing, promo": (
        ("POST", "/api/admin/promo-codes", {"kind": "percent", "value": 5}, ADMIN_HEADERS),
        ("code", "Object missing required field `code`"),
    ),
    "in a list": (
        (
            "POST",
            "/api/admin/promo-codes",
            {"code": "A", "kind": "percent", "value": 5, "tier_ids": [TIER, 7]},
            ADMIN_HEADERS,
        ),
        ("tier_ids[1]", "Expected `uuid`, got `int`"),
    ),
    "enum": (
        ("POST", "/api/admin/promo-codes", {"code": "A", "kind": "half", "value": 5}, ADMIN_HEADERS),
        ("kind", "Invalid enum value 'half'"),
    ),
    "missing, checkout": (
        ("POST", "/api/orders", {"name": "Ann"}, {}),
        ("email", "Object missing required field `email`"),
    ),
    "unknown, apply": (
        ("POST", "/api/cart/promo", {"code": "A", "coupon": "B"}, {}),
        ("coupon", "Object contains unknown field `coupon`"),
    ),
}


def assert_names(response, field: str, message: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "validation-error"
    assert body["field"] == field, body
    assert body["errors"] == [{"message": message, "key": field, "source": "body"}], body
    assert body["detail"] == f"{field}: {message}", body


@pytest.mark.parametrize("fast_lane", [True, False], ids=["fast-lane", "litestar"])
@pytest.mark.parametrize("case", list(CASES))
async def test_a_refused_body_names_the_field(api_with, case, fast_lane):
    (method, path, body, headers), (field, message) = CASES[case]
    async with api_with(fast_lane=fast_lane) as api:
        response = await api.request(method, path, json=body, headers=headers)
    assert_names(response, field, message)


async def test_a_body_that_is_not_an_object_names_no_field(api_with):
    async with api_with() as api:
        response = await api.post("/api/cart/items", json=[TIER, 1])
    assert response.status_code == 422
    body = response.json()
    assert "field" not in body
    assert body["errors"] == [{"message": "Expected `object`, got `array`", "source": "body"}]
    assert body["detail"] == "body: Expected `object`, got `array`"


# No body of the app nests objects today; one that will gets the same answers. The app's own
# problem mapping (EXCEPTION_HANDLERS) on a handler taking such a body:
class Line(msgspec.Struct, forbid_unknown_fields=True):
    x: Annotated[int, Meta(ge=1)]


class Nested(msgspec.Struct, forbid_unknown_fields=True):
    items: list[Line]


@post("/nested", sync_to_thread=False)
def take_nested(data: JSONBody[Nested]) -> None:
    return None


NESTED = {
    "unknown": ({"items": [{"x": 1}, {"x": 1, "y": 2}]}, ("items[1].y", "Object contains unknown field `y`")),
    "missing": ({"items": [{}]}, ("items[0].x", "Object missing required field `x`")),
    "wrong type": ({"items": [{"x": [1]}]}, ("items[0].x", "Expected `int`, got `array`")),
    "out of bounds": ({"items": [{"x": 0}]}, ("items[0].x", "Expected `int` >= 1")),
}


@pytest.mark.parametrize("case", list(NESTED))
async def test_a_nested_field_is_named_by_its_path(case):
    body, (field, message) = NESTED[case]
    async with AsyncTestClient(Litestar([take_nested], exception_handlers=EXCEPTION_HANDLERS)) as api:
        response = await api.post("/nested", json=body)
    assert_names(response, field, message)
