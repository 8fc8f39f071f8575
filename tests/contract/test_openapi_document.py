"""The OpenAPI document is the contract other services generate clients from: the checked-in
``docs/openapi.json`` is what the app serves, and the document says what the server checks
(``service/http/openapi.py``). No server is needed: the app is built and asked in process."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import example, given, settings as hypothesis_settings, strategies as st
from litestar.testing import TestClient

from service.app import create_app
from service.errors import DomainError
from service.http import openapi
from service.http.params import IDEMPOTENCY_KEY_PATTERN, idempotency_key
from service.promo.rules import normalize_code
from service.settings import Settings

PLACEHOLDERS = {"ADMIN_API_KEY": "-", "CART_TOKEN_SECRET": "-", "JWT_SECRET": "-"}
# Bodies the service takes from another party as it sends them, unknown fields too (SePay's).
OPEN_BODIES = {"SePayTransaction"}
CART_OPERATIONS = [
    ("get", "/api/cart"),
    ("delete", "/api/cart"),
    ("post", "/api/cart/items"),
    ("put", "/api/cart/items/{tier_id}"),
    ("delete", "/api/cart/items/{tier_id}"),
    ("post", "/api/cart/promo"),
    ("delete", "/api/cart/promo"),
    ("post", "/api/orders"),
]


@pytest.fixture(scope="module")
def served() -> dict:
    """The document as GET /schema/openapi.json answers it."""
    client = TestClient(create_app(Settings.from_env(PLACEHOLDERS)))  # no lifespan: no server reached
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def _body(operation: dict) -> str:
    return operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]


def _codes(response: dict) -> list[str]:
    return response["content"]["application/problem+json"]["schema"]["allOf"][1]["properties"]["code"]["enum"]


def test_the_checked_in_document_is_the_one_the_app_serves(served):
    checked_in = openapi.DOCUMENT_PATH.read_text()
    assert json.loads(checked_in) == served, "docs/openapi.json is not what the app serves: run `make openapi`"
    assert checked_in == openapi.render(served), "docs/openapi.json is not in its rendered form: run `make openapi`"


def test_every_request_body_refuses_unknown_fields(served):
    schemas = served["components"]["schemas"]
    bodies = {
        media["schema"]["$ref"].rsplit("/", 1)[1]
        for _, _, operation in _operations(served)
        for media in operation.get("requestBody", {}).get("content", {}).values()
    }
    assert bodies >= {"AddItem", "SetQuantity", "ApplyPromo", "CheckoutRequest", "TierDefinition", "PromoDefinition"}
    for name in bodies - OPEN_BODIES:
        assert schemas[name]["additionalProperties"] is False, name
        assert schemas[name]["examples"], name
    for name in OPEN_BODIES:  # another party's payload: it may add fields, and they are taken
        assert schemas[name]["additionalProperties"] is True, name
        assert schemas[name]["examples"], name
    sepay = served["paths"]["/api/payments/sepay"]["post"]
    assert "fields this document does not list" in sepay["description"]
    assert {"400", "422"}.isdisjoint(sepay["responses"]), "a SePay body is never refused for its shape"
    assert "additionalProperties" not in schemas["CartView"]  # answers may grow: clients must not refuse them


def test_every_path_parameter_is_described_exactly(served):
    for method, path, operation in _operations(served):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert (parameter["in"], parameter["name"]) in openapi.PARAMETERS, (method, path, parameter["name"])
            if parameter["in"] == "path" and parameter["name"].endswith("_id"):
                assert parameter["schema"] == {"type": "string", "format": "uuid"}, (method, path)
            if not parameter["required"]:  # a header or query value is absent or a string, never null
                assert {"type": "null"} not in parameter["schema"].get("oneOf", []), (method, path, parameter["name"])


def test_credentials_are_what_the_client_sends(served):
    schemes = served["components"]["securitySchemes"]
    assert schemes["cartToken"] == {**schemes["cartToken"], "type": "apiKey", "in": "header", "name": "X-Cart-Token"}
    assert schemes["cartCookie"] == {**schemes["cartCookie"], "type": "apiKey", "in": "cookie", "name": "cart_token"}
    assert schemes["adminKey"] == {**schemes["adminKey"], "type": "apiKey", "in": "header", "name": "X-Admin-Key"}
    assert schemes["bearer"]["scheme"] == "bearer"
    paths = served["paths"]
    for method, path in CART_OPERATIONS:
        # Alternatives, each its own requirement; {}: no credential at all is taken too.
        assert paths[path][method]["security"] == [{"bearer": []}, {"cartToken": []}, {"cartCookie": []}, {}], path
    assert paths["/api/cart/merge"]["post"]["security"] == [
        {"bearer": [], "cartToken": []},
        {"bearer": [], "cartCookie": []},
    ]
    assert paths["/api/orders"]["get"]["security"] == [{"bearer": []}]
    assert schemes["sepayApiKey"] == {
        **schemes["sepayApiKey"],
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    assert paths["/api/payments/sepay"]["post"]["security"] == [
        {"sepayApiKey": []},
        {"sepaySignature": [], "sepayTimestamp": []},
    ]
    assert _codes(paths["/api/payments/sepay"]["post"]["responses"]["401"]) == ["unauthorized"]
    for method, path, operation in _operations(served):
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes), (method, path)
        if path.startswith("/api/admin/"):
            assert operation["security"] == [{"adminKey": []}], (method, path)
            assert _codes(operation["responses"]["401"]) == ["unauthorized"], (method, path)


def test_every_refusal_is_a_problem_with_its_codes_and_headers(served):
    known = {cls.code for cls in _domain_errors()} | set(openapi._EDGE_CODES)
    for method, path, operation in _operations(served):
        if not path.startswith("/api/"):
            continue
        responses = operation["responses"]
        assert {"429", "431", "503"} <= set(responses), (method, path)
        assert responses["429"]["headers"]["Retry-After"]["required"] is True, (method, path)
        assert responses["503"]["headers"]["Retry-After"]["required"] is True, (method, path)
        if "requestBody" in operation and _body(operation) in OPEN_BODIES:
            assert "413" in set(responses), (method, path)
        elif "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), (method, path)
        for status, response in responses.items():
            if not status.startswith(("4", "5")):
                continue
            codes = _codes(response)
            assert codes and set(codes) <= known, (method, path, status, codes)
            examples = response["content"]["application/problem+json"]["examples"]
            assert [example["value"]["code"] for example in examples.values()] == codes, (method, path, status)
            assert all(example["value"]["status"] == int(status) for example in examples.values())
    add = served["paths"]["/api/cart/items"]["post"]["responses"]
    assert _codes(add["409"]) == [
        "sold-out",
        "limit-exceeded",
        "sale-not-open",
        "sale-closed",
        "currency-mismatch",
        "checkout-in-progress",
    ]
    assert "Retry-After" in add["409"]["headers"]  # with checkout-in-progress
    assert _codes(served["paths"]["/api/orders"]["post"]["responses"]["503"]) == ["checkout-pending", "unavailable"]
    assert _codes(served["paths"]["/api/cart/promo"]["post"]["responses"]["422"]) == [
        "invalid-promo",
        "validation-error",
    ]


def _domain_errors() -> list[type[DomainError]]:
    found, pending = [], [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_rules_a_schema_cannot_say_are_in_the_descriptions(served):
    paths = served["paths"]
    merge = paths["/api/cart/merge"]["post"]["description"]
    assert "X-Cart-Token header or the cart_token cookie" in merge and "422" in merge
    assert "`starts_at` must be before `ends_at`" in paths["/api/admin/promo-codes"]["post"]["description"]
    assert "`sales_start` must be before `sales_end`" in paths["/api/admin/tiers/{tier_id}"]["put"]["description"]
    listing = paths["/api/orders"]["get"]["description"]
    assert '{"orders": [...], "next_cursor": ...}' in listing and "next, older page" in listing
    promo = served["components"]["schemas"]["PromoDefinition"]
    assert promo["allOf"][0]["if"] == {"properties": {"kind": {"const": "percent"}}}


def test_answers_say_their_ids_and_states(served):
    schemas = served["components"]["schemas"]
    assert schemas["OrderView"]["properties"]["id"]["format"] == "uuid"
    assert schemas["OrderView"]["properties"]["status"]["enum"] == ["pending_payment", "paid", "cancelled", "expired"]
    assert schemas["CartView"]["properties"]["status"]["enum"] == ["empty", "open", "checkout"]
    assert schemas["OrderPage"]["required"] == ["next_cursor", "orders"]


# Every character str.strip() drops, and a few it does not, around something code-like.
_AROUND = st.text(
    st.sampled_from([chr(c) for c in range(0x3001) if chr(c).isspace()] + ["x", "\x00", "\u00e9"]), max_size=3
)
_CODE_LIKE = st.from_regex(r"[A-Za-z0-9_\-\u00e9\u212a]{0,66}", fullmatch=True)


@hypothesis_settings(max_examples=500, deadline=None)
@given(st.text(max_size=80) | st.builds(lambda a, code, b: a + code + b, _AROUND, _CODE_LIKE, _AROUND))
@example("A" * 64)
@example("A" * 65)
@example("\u3000spring-10\t")
@example("")
def test_the_promo_code_pattern_is_the_rule_the_service_applies(text):
    documented = re.fullmatch(openapi.PROMO_CODE_PATTERN[1:-1], text) is not None
    assert documented == (normalize_code(text) is not None), repr(text)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    st.text(st.characters(max_codepoint=0xFF), max_size=210) | st.from_regex(IDEMPOTENCY_KEY_PATTERN, fullmatch=True)
)
@example("k" * 200)
@example("k" * 201)
@example("order 1")
@example("\u00e9")
def test_the_idempotency_key_pattern_is_the_rule_the_service_applies(text):
    # What reaches the service: HTTP drops spaces and tabs around a header value.
    sent = text.strip(" \t")
    documented = re.fullmatch(IDEMPOTENCY_KEY_PATTERN[1:-1], sent) is not None and len(sent) <= 200
    try:
        taken = idempotency_key(sent) is not None
    except Exception:
        taken = False
    assert documented == taken, repr(sent)
