"""Bad data is never an outage, and never a 500: NUL in free text, instants PostgreSQL or
Python cannot convert, crafted order cursors are each a 422 ``validation-error`` naming the
field, refused at the edge (``service.validation``), and change nothing. A value PostgreSQL
refuses all the same (``asyncpg.DataError``) is a 422 too, not a 500 or a 503."""

from __future__ import annotations

import base64
import datetime as dt
import re
import typing
import uuid
from collections.abc import AsyncIterator

import msgspec
import pytest
import pytest_asyncio

from service.promo.dto import PromoDefinition
from service.validation import INSTANT_RULE, NO_NUL_PATTERN, RequestBody
from tests.api import ADMIN_HEADERS, bearer, put_tier
from tests.hardening.conftest import is_problem

NUL = "\x00"

# Instants out of range: the first two overflow on conversion to UTC (the reported 500s).
FAR_INSTANTS = {
    "year 1 at +14:00": "0001-01-01T00:00:00+14:00",
    "year 9999 at -14:00": "9999-12-31T23:59:59-14:00",
    "year 1 in UTC": "0001-01-01T00:00:00Z",
    "just before 2000 UTC": "2000-01-01T00:00:00+14:00",
    "2100 exactly": "2100-01-01T00:00:00Z",
    "a Unix timestamp in year 5138": 10**11,
    "no time zone": "2030-01-01T00:00:00",
}


@pytest_asyncio.fixture(loop_scope="session")
async def api(api_with) -> AsyncIterator:
    async with api_with() as client:
        yield client


def refused(response, field: str) -> dict:
    """The 422 validation-error naming ``field``; its body."""
    assert is_problem(response, 422, "validation-error"), (response.status_code, response.text)
    body = response.json()
    assert body["field"] == field and field in body["detail"], body
    return body


async def guest_cart(api, tier_id: str) -> dict[str, str]:
    added = await api.post("/api/cart/items", json={"tier_id": tier_id, "quantity": 1})
    assert added.status_code == 201, added.text
    api.cookies.clear()
    return {"X-Cart-Token": added.headers["x-cart-token"]}


def cursor(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- NUL in free text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "buyer@example.com", "name": f"Ann{NUL}"}, "name"),
        ({"email": f"buyer{NUL}@example.com"}, "email"),
        ({"email": f"buyer@example.com{NUL}"}, "email"),
    ],
)
async def test_nul_in_a_checkout_is_422_and_the_cart_keeps_its_seats(api, db_pool, body, field):
    tier = await put_tier(api)
    cart = await guest_cart(api, tier["id"])

    body = refused(await api.post("/api/orders", json=body, headers=cart), field)

    assert "NUL" in body["detail"]
    assert await db_pool.fetchval("SELECT count(*) FROM orders") == 0
    view = (await api.get("/api/cart", headers=cart)).json()
    assert view["status"] == "open" and view["item_count"] == 1
    inventory = (await api.get(f"/api/admin/tiers/{tier['id']}", headers=ADMIN_HEADERS)).json()["inventory"]
    assert (inventory["held"], inventory["sold"], inventory["sold_db"]) == (1, 0, 0)


async def test_nul_in_a_tier_name_is_422_and_stores_nothing(api, db_pool):
    tier_id, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "name": f"General{NUL}",
        "price": 1,
        "currency": "VND",
        "quantity_total": 1,
        "max_per_order": 1,
    }

    refused(await api.put(f"/api/admin/tiers/{tier_id}", json=body, headers=ADMIN_HEADERS), "name")
    assert await db_pool.fetchval("SELECT count(*) FROM ticket_tiers WHERE id = $1", uuid.UUID(tier_id)) == 0

    existing = await put_tier(api, name="Before")
    body = {**body, "event_id": existing["event_id"]}
    refused(await api.put(f"/api/admin/tiers/{existing['id']}", json=body, headers=ADMIN_HEADERS), "name")
    assert (await api.get(f"/api/admin/tiers/{existing['id']}", headers=ADMIN_HEADERS)).json()["name"] == "Before"


async def test_nul_in_a_promo_code_is_422_for_the_admin_and_the_buyer(api, db_pool):
    refused(
        await api.post(
            "/api/admin/promo-codes", json={"code": f"SAVE{NUL}", "kind": "percent", "value": 10}, headers=ADMIN_HEADERS
        ),
        "code",
    )
    assert await db_pool.fetchval("SELECT count(*) FROM promo_codes") == 0

    tier = await put_tier(api)
    cart = await guest_cart(api, tier["id"])
    assert (
        await api.post(
            "/api/admin/promo-codes", json={"code": "SAVE", "kind": "percent", "value": 10}, headers=ADMIN_HEADERS
        )
    ).status_code == 201
    refused(await api.post("/api/cart/promo", json={"code": f"SAVE{NUL}"}, headers=cart), "code")
    assert (await api.get("/api/cart", headers=cart)).json()["promo_code"] is None


# -- instants ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", FAR_INSTANTS.values(), ids=FAR_INSTANTS.keys())
@pytest.mark.parametrize("field", ["sales_start", "sales_end"])
async def test_a_tier_sale_time_out_of_range_is_422_and_stores_nothing(api, db_pool, field, value):
    tier_id = str(uuid.uuid4())
    body = {
        "event_id": str(uuid.uuid4()),
        "name": "GA",
        "price": 1,
        "currency": "VND",
        "quantity_total": 1,
        "max_per_order": 1,
        field: value,
    }

    refused(await api.put(f"/api/admin/tiers/{tier_id}", json=body, headers=ADMIN_HEADERS), field)

    assert await db_pool.fetchval("SELECT count(*) FROM ticket_tiers") == 0


@pytest.mark.parametrize("value", FAR_INSTANTS.values(), ids=FAR_INSTANTS.keys())
@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
async def test_a_promo_window_out_of_range_is_422_and_stores_nothing(api, db_pool, field, value):
    body = {"code": "WINDOW", "kind": "percent", "value": 10, field: value}

    refused(await api.post("/api/admin/promo-codes", json=body, headers=ADMIN_HEADERS), field)

    assert await db_pool.fetchval("SELECT count(*) FROM promo_codes") == 0


async def test_the_range_is_of_instants_not_of_wall_clocks(api):
    """2000-01-01T00:00Z is the first instant taken; 2100-01-01T00:00+01:00 is before 2100 UTC."""
    tier = await put_tier(api, sales_start="2000-01-01T00:00:00Z", sales_end="2100-01-01T00:00:00+01:00")
    assert (tier["sales_start"], tier["sales_end"]) == ("2000-01-01T00:00:00Z", "2099-12-31T23:00:00Z")


# -- crafted cursors --------------------------------------------------------------------------

SOME_ID = "5b0c4d8e-4a52-4f0e-9a59-2f6f4a3f0d11"
CRAFTED_CURSORS = {
    "not base64url": "!!!",
    "bad base64 length": "A",
    "not UTF-8": cursor(b"\xff\xfe\xfd"),
    "no separator": cursor("2030-01-01T00:00:00+00:00"),
    "JSON": cursor(f'{{"created_at": "2030-01-01T00:00:00+00:00", "id": "{SOME_ID}"}}'),
    "a number for the time": cursor(f"1893456000|{SOME_ID}"),
    "a naive time": cursor(f"2030-01-01T00:00:00|{SOME_ID}"),
    "year 1 at +14:00": cursor(f"0001-01-01T00:00:00+14:00|{SOME_ID}"),
    "year 9999 at -14:00": cursor(f"9999-12-31T23:59:59-14:00|{SOME_ID}"),
    "not a UUID": cursor("2030-01-01T00:00:00+00:00|42"),
    "a UUID in braces": cursor(f"2030-01-01T00:00:00+00:00|{{{SOME_ID}}}"),
    "a trailing field": cursor(f"2030-01-01T00:00:00+00:00|{SOME_ID}|x"),
    "NUL": f"AAAA{NUL}",
    "huge": "A" * 10_000,
}


@pytest.mark.parametrize("crafted", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
async def test_a_crafted_cursor_is_422(api, settings, crafted):
    response = await api.get("/api/orders", params={"cursor": crafted}, headers=bearer(settings, "crafty"))
    refused(response, "cursor")


async def test_a_cursor_the_api_gave_out_still_pages(api, settings):
    tier = await put_tier(api, max_per_order=10)
    headers = bearer(settings, "pager")
    for _ in range(2):
        assert (
            await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1}, headers=headers)
        ).status_code in (200, 201)
        assert (await api.post("/api/orders", json={"email": "pager@example.com"}, headers=headers)).status_code == 201

    first = (await api.get("/api/orders", params={"limit": 1}, headers=headers)).json()
    second = await api.get("/api/orders", params={"limit": 1, "cursor": first["next_cursor"]}, headers=headers)

    assert second.status_code == 200 and len(second.json()["orders"]) == 1
    assert second.json()["orders"][0]["id"] != first["orders"][0]["id"]


# -- what still gets past the edge -------------------------------------------------------------


async def test_a_value_postgresql_refuses_is_422_not_500(api, db_pool, monkeypatch):
    """The general mapping, for bad data the edge does not know of: a real DataError."""
    import service.inventory.service as inventory_service

    async def refuses_nul(conn, *args, **kwargs):
        await conn.fetchval("SELECT $1::text", f"a{NUL}")

    monkeypatch.setattr(inventory_service, "upsert_tier", refuses_nul)
    tier_id = str(uuid.uuid4())
    body = {
        "event_id": str(uuid.uuid4()),
        "name": "GA",
        "price": 1,
        "currency": "VND",
        "quantity_total": 1,
        "max_per_order": 1,
    }

    response = await api.put(f"/api/admin/tiers/{tier_id}", json=body, headers=ADMIN_HEADERS)

    assert is_problem(response, 422, "validation-error"), response.text
    assert "Retry-After" not in response.headers
    assert await db_pool.fetchval("SELECT count(*) FROM ticket_tiers") == 0


# -- every body and parameter, present and future -----------------------------------------------

_NOT_QUERY = {"request", "scope", "state", "headers", "cookies", "query", "body", "socket"}


def _app_inputs(settings) -> tuple[set[type], dict[str, object]]:
    """The app's request body types, and its query parameters ("path?name" -> Litestar's field)."""
    from service.app import create_app

    bodies, queries = set(), {}
    for route in create_app(settings).routes:
        for handler in getattr(route, "route_handlers", []):
            for name, field in handler.parsed_fn_signature.parameters.items():
                where = field.kwarg_definition
                if name == "data":
                    bodies.add(field.annotation)
                elif (
                    name in _NOT_QUERY
                    or type(where).__name__ in ("PathParameter", "HeaderParameter")
                    or (getattr(where, "header", None) or getattr(where, "cookie", None))
                ):
                    continue
                else:
                    queries[f"{route.path}?{name}"] = field
    return bodies, queries


def _leaf_types(body: type) -> list[tuple[str, msgspec.inspect.Type]]:
    """(field, type) of a body's fields, Optional and lists unwrapped."""
    found = []
    for field in msgspec.inspect.type_info(body).fields:
        pending = [field.type]
        while pending:
            kind = pending.pop()
            if isinstance(kind, msgspec.inspect.UnionType):
                pending.extend(kind.types)
            elif isinstance(kind, msgspec.inspect.Metadata):
                pending.append(kind.type)
            elif isinstance(kind, msgspec.inspect.ListType):
                pending.append(kind.item_type)
            else:
                found.append((field.name, kind))
    return found


def _refuses_nul(pattern: str | None) -> bool:
    """The shared pattern, or a stricter one: no string holding NUL matches it."""
    return pattern is not None and not any(re.search(pattern, text) for text in (NUL, f"ABC{NUL}", f"{NUL}ABC"))


def test_every_text_field_of_every_body_refuses_nul_and_every_instant_is_bounded(settings):
    bodies, _ = _app_inputs(settings)
    assert {b.__name__ for b in bodies} >= {"CheckoutRequest", "TierDefinition", "PromoDefinition", "ApplyPromo"}
    checked = set()
    for body in bodies:
        assert body.__struct_config__.forbid_unknown_fields, body
        for name, kind in _leaf_types(body):
            if isinstance(kind, msgspec.inspect.StrType):
                assert _refuses_nul(kind.pattern), (body, name, kind.pattern)
                checked.add(f"{body.__name__}.{name}")
            if isinstance(kind, msgspec.inspect.DateTimeType):
                assert issubclass(body, RequestBody), (body, name)
                checked.add(f"{body.__name__}.{name}")
    assert checked >= {
        "CheckoutRequest.email",
        "CheckoutRequest.name",
        "TierDefinition.name",
        "TierDefinition.currency",
        "TierDefinition.sales_start",
        "PromoDefinition.code",
        "PromoDefinition.ends_at",
        "ApplyPromo.code",
    }


def test_every_text_query_parameter_refuses_nul(settings):
    _, queries = _app_inputs(settings)
    assert "/api/orders?cursor" in queries
    for where, field in queries.items():
        if str in (field.annotation, *typing.get_args(field.annotation)):
            assert _refuses_nul(getattr(field.kwarg_definition, "pattern", None)), where


def test_a_post_init_error_names_its_field():
    refused_body = {"code": "X", "kind": "percent", "value": 1, "ends_at": "0001-01-01T00:00:00+14:00"}
    with pytest.raises(msgspec.ValidationError, match=r"`\$\.ends_at`$"):
        msgspec.json.decode(msgspec.json.encode(refused_body), type=PromoDefinition)
    assert (
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
        == msgspec.json.decode(
            b'{"code":"X","kind":"percent","value":1,"starts_at":"2000-01-01T00:00:00Z"}', type=PromoDefinition
        ).starts_at
    )


async def test_the_openapi_document_shows_the_constraints(api):
    document = (await api.get("/schema/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for body, field in [
        ("CheckoutRequest", "email"),
        ("CheckoutRequest", "name"),
        ("TierDefinition", "name"),
        ("PromoDefinition", "code"),
        ("ApplyPromo", "code"),
    ]:
        pattern = schemas[body]["properties"][field]["pattern"]
        # A promo code's pattern is stricter (A-Z, 0-9, '_', '-'), and refuses NUL too.
        assert pattern == NO_NUL_PATTERN or (field == "code" and _refuses_nul(pattern)), (body, field)
    for body, field in [
        ("TierDefinition", "sales_start"),
        ("TierDefinition", "sales_end"),
        ("PromoDefinition", "starts_at"),
        ("PromoDefinition", "ends_at"),
    ]:
        assert INSTANT_RULE in schemas[body]["properties"][field]["description"], (body, field)
    parameters = {p["name"]: p for p in document["paths"]["/api/orders"]["get"]["parameters"]}
    assert parameters["cursor"]["schema"]["pattern"] == "^[A-Za-z0-9_-]+$"
