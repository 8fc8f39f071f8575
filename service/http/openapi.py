"""The OpenAPI document says exactly what the API accepts and answers, so that clients
generated from it send only requests the server takes and read every answer it gives.

Handlers declare what is theirs: their security requirements (``CART_CALLER``,
``SIGNED_IN``, ...), a description with the rules a schema cannot say, and the refusals of
their domain (``responses=problems(TierNotFound, SoldOut, ...)``: statuses and codes from
the error classes). ``finish_document`` then completes the document once, generically:

- every request body whose Struct refuses unknown fields says ``additionalProperties: false``;
- path, header and query parameters get the exact schema the server checks (``PARAMETERS``),
  optional ones lose the ``null`` msgspec gives them (a header or query value is never null);
- schema rules the Structs cannot carry (``COMPONENT_RULES``) and request examples;
- the refusals every ``/api/`` operation shares: 401 with the codes of its credentials, 429
  (``Retry-After``, ``RateLimit-*``), 431, 503 (``Retry-After``), and 400/413/422 where there
  is a body or parameters; each problem response lists the ``code`` values it can carry as
  an enum, with one example each.

It changes the document only, never a response. ``docs/openapi.json`` is the document as
served; ``python -m service.http.openapi --write`` (``make openapi``) writes it again.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIMediaType, Operation, Reference, RequestBody

from service.errors import DomainError
from service.events.payloads import EVENT_KINDS
from service.http.params import IDEMPOTENCY_KEY_PATTERN
from service.http.problems import PROBLEM_JSON

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.openapi.spec import OpenAPI

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
JSON = "application/json"


class Problem(msgspec.Struct):
    """A refusal (RFC 9457). Some carry more members: ``available`` (sold-out), ``limit`` and
    ``what`` (limit-exceeded), ``errors`` and ``field`` (validation-error), ``reason``
    (invalid-promo)."""

    type: str
    title: str
    status: int
    detail: str
    code: str  # stable: callers branch on it
    instance: str | None = None


# -- credentials ---------------------------------------------------------------------------

SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A signed-in user (HS256 JWT from the platform's identity service, `sub` = user id, "
        "`exp` required). The user keeps one cart on every device; it wins over a cart token sent with it.",
    },
    "cartToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Cart-Token",
        "description": "A guest cart's signed token, as the answer that made the cart sent it (X-Cart-Token "
        "response header of POST /api/cart/items or PUT /api/cart/items/{tier_id}). Without one, a change "
        "makes a new cart.",
    },
    "cartCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "cart_token",
        "description": "The same guest cart token in the HttpOnly cookie set with it (browsers); the "
        "X-Cart-Token header wins when both are sent.",
    },
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Admin-Key",
        "description": "The service's admin key (ADMIN_API_KEY), for /api/admin/*.",
    },
    "sepayApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "SePay's API key mode (SEPAY_AUTH=apikey): the header's value is `Apikey <SEPAY_API_KEY>`.",
    },
    "sepaySignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-SePay-Signature",
        "description": "SePay's HMAC mode (SEPAY_AUTH=hmac): `sha256=<hex>`, the HMAC-SHA256 under "
        'SEPAY_HMAC_SECRET of `"<X-SePay-Timestamp>.<raw body>"`; sent with X-SePay-Timestamp.',
    },
    "sepayTimestamp": {
        "type": "apiKey",
        "in": "header",
        "name": "X-SePay-Timestamp",
        "description": "SePay's HMAC mode: when the delivery was signed, Unix seconds; at most 5 minutes "
        "from the server's time.",
    },
}
# Security requirements, for the handlers' ``security=``: alternatives are separate objects.
CART_CALLER: list[dict[str, list[str]]] = [{"bearer": []}, {"cartToken": []}, {"cartCookie": []}, {}]
SIGNED_IN: list[dict[str, list[str]]] = [{"bearer": []}]
SIGNED_IN_WITH_GUEST_CART: list[dict[str, list[str]]] = [
    {"bearer": [], "cartToken": []},
    {"bearer": [], "cartCookie": []},
]
OWNER_OR_ORDER_TOKEN: list[dict[str, list[str]]] = [{"bearer": []}, {}]
ADMIN_KEY: list[dict[str, list[str]]] = [{"adminKey": []}]
SEPAY: list[dict[str, list[str]]] = [{"sepayApiKey": []}, {"sepaySignature": [], "sepayTimestamp": []}]

# The 401 codes each credential can bring; "unauthorized" too when none is optional.
_CREDENTIAL_CODES = {
    "bearer": "invalid-token",
    "cartToken": "invalid-cart-token",
    "cartCookie": "invalid-cart-token",
    "adminKey": "unauthorized",
    "sepayApiKey": "unauthorized",
    "sepaySignature": "unauthorized",
    "sepayTimestamp": "unauthorized",
}


# -- refusals --------------------------------------------------------------------------------

REFUSALS = {
    400: "The request could not be read (JSON that does not parse)",
    401: "Credentials missing, forged or expired",
    403: "Not allowed",
    404: "No such resource",
    409: "Refused by the current state",
    413: "The body is larger than 16 KiB",
    422: "The request is not valid: `field` names what is wrong",
    429: "Too many requests: wait Retry-After seconds",
    431: "The request's headers pass 16 KiB",
    503: "A backing store is unavailable or a checkout's outcome is not known yet; try again after Retry-After seconds",
}
# The codes of a status when a handler names the status alone (``problems(404)``).
STATUS_CODES = {
    400: ["bad-request"],
    401: ["unauthorized", "invalid-cart-token", "invalid-token"],
    403: ["forbidden"],
    404: ["not-found", "tier-not-found"],
    409: [
        "sold-out",
        "limit-exceeded",
        "sale-not-open",
        "sale-closed",
        "currency-mismatch",
        "checkout-in-progress",
        "cart-empty",
        "reservation-expired",
        "promo-exhausted",
        "seats-gone",
        "conflict",
    ],
    413: ["payload-too-large"],
    422: ["validation-error"],
    429: ["rate-limited"],
    431: ["request-header-fields-too-large"],
    503: ["unavailable"],
}
# Codes that are no DomainError: (title, an example detail).
_EDGE_CODES = {
    "bad-request": ("Bad request", "The body is not valid JSON"),
    "forbidden": ("Forbidden", "Not allowed"),
    "payload-too-large": ("Payload too large", "The body is larger than 16384 bytes"),
    "request-header-fields-too-large": ("Request header fields too large", "The headers pass 16384 bytes"),
}
# What an example of a code says and carries besides the standard members.
_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "sold-out": ("Only 2 seats are left", {"available": 2}),
    "limit-exceeded": ("At most 6 tickets of this tier per order", {"limit": 6, "what": "per-order"}),
    "validation-error": ("quantity: Expected `int` >= 1", {"field": "quantity"}),
    "invalid-promo": ("No such promo code", {"reason": "not-found"}),
    "promo-exhausted": ("This promo code has been used up", {"limit": "total"}),
    "rate-limited": ("Too many requests; try again in 1 s", {"retry_after_ms": 600}),
    "currency-mismatch": (
        "The cart holds tickets in VND; this tier is sold in USD",
        {"cart_currency": "VND", "tier_currency": "USD"},
    ),
    "checkout-in-progress": ("The cart is being checked out; try again in a moment", {}),
    "checkout-pending": ("The order may have been written; retry the same checkout in a moment", {}),
    "unavailable": ("The service could not reach its data store; nothing was changed", {}),
}


def _error_classes() -> dict[str, type[DomainError]]:
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.code, cls)
        pending.extend(cls.__subclasses__())
    return found


def problem_example(status: int, code: str, instance: str = "/api/...") -> dict[str, Any]:
    """A problem document as the service sends one with this code."""
    error = _error_classes().get(code)
    title = error.title if error is not None else _EDGE_CODES[code][0]
    detail, extra = _EXAMPLES.get(code, (_EDGE_CODES[code][1] if code in _EDGE_CODES else title, {}))
    return {
        "type": f"https://ticket-cart.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
        **extra,
    }


def problems(*refusals: int | type[DomainError]) -> dict[int, ResponseSpec]:
    """For a handler's ``responses=``: the refusals of its domain, as problem documents, each
    status with the codes it can carry. A DomainError class brings its status and code; a
    status alone brings every code of that status (``STATUS_CODES``)."""
    codes: dict[int, list[str]] = {}
    for refusal in refusals:
        if isinstance(refusal, int):
            for code in STATUS_CODES[refusal]:
                _add(codes.setdefault(refusal, []), code)
        else:
            _add(codes.setdefault(refusal.status, []), refusal.code)
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=REFUSALS[status],
            generate_examples=False,
            examples=[Example(id=code, summary=code, value=problem_example(status, code)) for code in status_codes],
        )
        for status, status_codes in codes.items()
    }


def _add(codes: list[str], code: str) -> None:
    if code not in codes:
        codes.append(code)


# -- schemas -----------------------------------------------------------------------------------

_UUID = {"type": "string", "format": "uuid"}
# Python's str.strip() whitespace, which the server trims around a promo code.
_WS = "[\\t-\\r\\x1c- \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
PROMO_CODE_PATTERN = f"^{_WS}*[A-Za-z0-9_-]{{1,64}}{_WS}*$"
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {"schema": {"type": "integer"}, "description": "Requests the bucket holds (the burst)"},
    "RateLimit-Remaining": {"schema": {"type": "integer"}, "description": "Requests that may still come at once"},
    "RateLimit-Reset": {"schema": {"type": "integer"}, "description": "Seconds until the bucket is full again"},
}
_RETRY_AFTER = {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds to wait before trying again"}

# (where, name) -> the schema the server checks, and what to say about it.
PARAMETERS: dict[tuple[str, str], dict[str, Any]] = {
    ("path", "tier_id"): {"schema": _UUID, "description": "The tier's id (a UUID; anything else: 422)"},
    ("path", "event_id"): {"schema": _UUID, "description": "The event's id (a UUID; anything else: 422)"},
    ("path", "order_id"): {"schema": _UUID, "description": "The order's id"},
    ("path", "endpoint_id"): {"schema": _UUID, "description": "The webhook endpoint's id (a UUID; anything else: 422)"},
    ("path", "delivery_id"): {"schema": _UUID, "description": "The webhook delivery's id (a UUID; anything else: 422)"},
    ("query", "endpoint_id"): {"schema": _UUID},
    ("path", "payment_id"): {"schema": _UUID, "description": "The payment's id (a UUID; anything else: 422)"},
    ("path", "code"): {
        "schema": {"type": "string", "pattern": PROMO_CODE_PATTERN},
        "description": "The promo code, case-insensitive (1 to 64 of A-Z, 0-9, '_', '-')",
    },
    ("header", "Idempotency-Key"): {
        "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": IDEMPOTENCY_KEY_PATTERN},
    },
    ("header", "X-Order-Token"): {"schema": {"type": "string"}},  # empty: as if not sent
    ("query", "order_id"): {"schema": _UUID},
}

# Rules of request bodies the Structs cannot carry (msgspec knows no cross-field rule), and
# the code pattern the service checks after decoding. Merged into the component's schema.
COMPONENT_RULES: dict[str, dict[str, Any]] = {
    "PromoDefinition": {
        "properties": {
            "code": {"pattern": PROMO_CODE_PATTERN},
            "tier_ids": {"minItems": 1},
        },
        # kind decides value's range and whether currency is wanted.
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": "percent"}}},
                "then": {"properties": {"value": {"maximum": 100}, "currency": {"type": "null"}}},
                "else": {"required": ["currency"], "properties": {"currency": {"type": "string"}}},
            }
        ],
    },
    "ApplyPromo": {"properties": {"code": {"pattern": PROMO_CODE_PATTERN}}},
}
# What answers hold, narrower than their Structs' types say: ids are UUIDs, states one of a
# few words. Merged into each property (into its non-null branch when it may be null).
_ORDER_STATUS = {"enum": ["pending_payment", "paid", "cancelled", "expired"]}
_PAYMENT_STATUS = {"enum": ["paid", "needs_review", "ignored"]}
RESPONSE_RULES: dict[str, dict[str, dict[str, Any]]] = {
    "CartView": {"status": {"enum": ["empty", "open", "checkout"]}},
    "MergedCartView": {"status": {"enum": ["empty", "open", "checkout"]}},
    "CartItem": {"tier_id": _UUID, "event_id": _UUID, "currency": {"pattern": "^[A-Z]{3}$"}},
    "RestoredLine": {"tier_id": _UUID},
    "CappedItem": {"tier_id": _UUID},
    "UnmergedPart": {"event_id": _UUID, "reason": {"enum": ["guest-checkout", "user-checkout"]}},
    "Availability": {
        "tier_id": _UUID,
        "event_id": _UUID,
        "status": {"enum": ["on-sale", "sold-out", "not-open", "closed", "inactive"]},
    },
    "TierView": {"id": _UUID, "event_id": _UUID},
    "OrderItem": {"tier_id": _UUID, "event_id": _UUID},
    "Ticket": {"id": _UUID, "tier_id": _UUID, "event_id": _UUID, "status": {"enum": ["valid", "void"]}},
    "OrderView": {"id": _UUID, "status": _ORDER_STATUS, "email": {"format": "email"}},
    "OrderSummary": {"id": _UUID, "status": _ORDER_STATUS},
    "PromoCode": {"kind": {"enum": ["percent", "fixed"]}, "event_id": _UUID, "tier_ids": {"items": _UUID}},
    "EndpointView": {"id": _UUID, "events": {"items": {"enum": list(EVENT_KINDS)}}},
    "EndpointSecret": {"id": _UUID, "events": {"items": {"enum": list(EVENT_KINDS)}}, "secret": {"pattern": "^whsec_"}},
    "DeliveryView": {
        "id": _UUID,
        "event_id": _UUID,
        "order_id": _UUID,
        "endpoint_id": _UUID,
        "kind": {"enum": list(EVENT_KINDS)},
    },
    "Payment": {"qr_url": {"format": "uri"}},
    "PaymentView": {"id": _UUID, "order_id": _UUID, "status": _PAYMENT_STATUS},
    "PaymentRecord": {"id": _UUID, "order_id": _UUID, "status": _PAYMENT_STATUS},
}
# One example per request body (the examples of the interactive docs, and of clients' docs).
BODY_EXAMPLES: dict[str, dict[str, Any]] = {
    "AddItem": {"tier_id": "7c000000-0000-4000-8000-00000000a001", "quantity": 2},
    "SetQuantity": {"quantity": 3},
    "ApplyPromo": {"code": "SPRING10"},
    "CheckoutRequest": {"email": "buyer@example.com", "name": "Nguyen Van A"},
    "TierDefinition": {
        "event_id": "7c000000-0000-4000-8000-0000000000e1",
        "name": "General admission",
        "price": 500000,
        "currency": "VND",
        "quantity_total": 1000,
        "max_per_order": 6,
        "sales_start": "2026-01-01T00:00:00Z",
        "sales_end": "2099-12-31T00:00:00Z",
        "active": True,
    },
    "PromoDefinition": {"code": "SPRING10", "kind": "percent", "value": 10, "max_uses": 500},
    "NewEndpoint": {
        "url": "https://tickets-mail.example.com/hooks/orders",
        "events": ["order.paid", "order.cancelled"],
        "description": "Ticket e-mails",
    },
    "SePayTransaction": {
        "id": 92704,
        "gateway": "Vietcombank",
        "transactionDate": "2026-03-25 14:02:37",
        "accountNumber": "0123499999",
        "subAccount": None,
        "code": "TCMCY6JKAQE",
        "content": "TCMCY6JKAQE chuyen tien",
        "transferType": "in",
        "transferAmount": 500000,
        "accumulated": 19077000,
        "referenceCode": "MBVCB.3278907687",
        "description": "BankAPINotify TCMCY6JKAQE chuyen tien",
    },
}


def raw_body_operation(body: type[msgspec.Struct], description: str) -> type[Operation]:
    """An ``operation_class`` for a handler that reads its body itself (``request.body()``)
    and never refuses it for its shape: the document shows ``body``, a Struct that takes
    unknown fields (``additionalProperties: true``), as its request body, and no 400 or 422."""

    @dataclass
    class RawBodyOperation(Operation):
        raw_body: ClassVar[type[msgspec.Struct]] = body

        def __post_init__(self) -> None:
            schema = Reference(ref=f"{_REF}{body.__name__}")
            self.request_body = RequestBody(
                content={JSON: OpenAPIMediaType(schema=schema)}, description=description, required=True
            )

    return RawBodyOperation


# -- the document ------------------------------------------------------------------------------


def document_refusals(app: Litestar) -> Litestar:
    """What service/app.py calls: the app's document is finished (``finish_document``) when
    it is first built, which Litestar does on first use (a request for it, ``app.openapi_schema``),
    not when the app is built. Building and finishing it takes about 40 ms, which every app
    paid at start-up: a quarter of the test suite's time, where hundreds of apps are built
    and few ask for their document.

    Litestar adds its own OpenAPIPlugin to every app; its class becomes the one below, which
    finishes what Litestar's ``_build_openapi`` returns. That method is Litestar's own (not
    public API): tests/contract/test_openapi_document.py fails if the served document is not
    the finished one, so an upgrade that changes it cannot pass unnoticed."""
    plugin = app.plugins.get(OpenAPIPlugin)
    plugin.__class__ = _FinishingOpenAPIPlugin
    return app


class _FinishingOpenAPIPlugin(OpenAPIPlugin):
    __slots__ = ()

    def _build_openapi(self) -> OpenAPI:
        return finish_document(super()._build_openapi())


def finish_document(openapi: OpenAPI) -> OpenAPI:
    """Complete the app's document (see the module's docstring), in place: the finished
    paths and components replace Litestar's, as plain JSON (``to_schema`` renders it as is),
    so ``app.openapi_schema`` and /schema/openapi.json say the same."""
    raw_bodies = _raw_bodies(openapi)
    document = openapi.to_schema()
    components = document.setdefault("components", {})
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = _problem_schema()
    for name in _closed_bodies(document):
        schemas[name]["additionalProperties"] = False
    for body in set(raw_bodies.values()):
        (_, found) = msgspec.json.schema_components([body], ref_template=_REF + "{name}")
        schemas.update(found)
        schemas[body.__name__]["additionalProperties"] = True
    for name, rules in COMPONENT_RULES.items():
        if name in schemas:
            _merge(schemas[name], copy.deepcopy(rules))
    for name, fields in RESPONSE_RULES.items():
        for field, rule in fields.items():
            if name in schemas:
                _narrow(schemas[name]["properties"][field], rule)
    for name, example in BODY_EXAMPLES.items():
        if name in schemas:
            schemas[name]["examples"] = [example]
    for path, _, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            _finish_parameter(parameter)
        if path.startswith("/api/"):
            _finish_responses(path, operation, raw_body=operation.get("operationId") in raw_bodies)
    _tidy(document)
    raw: Any = openapi  # the spec classes' fields are typed as spec objects; plain JSON renders the same
    raw.paths = document["paths"]
    raw.components = components
    return openapi


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            if method in item:
                yield path, method, item[method]


_REF = "#/components/schemas/"


def _raw_bodies(openapi: OpenAPI) -> dict[str, type[msgspec.Struct]]:
    """operationId -> body of each operation a ``raw_body_operation`` describes."""
    found: dict[str, type[msgspec.Struct]] = {}
    for item in (openapi.paths or {}).values():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            body = getattr(type(operation), "raw_body", None)
            if operation is not None and body is not None and operation.operation_id:
                found[operation.operation_id] = body
    return found


def _closed_bodies(document: dict[str, Any]) -> set[str]:
    """The component names of every request body Struct (and Struct inside one) that refuses
    unknown fields. Litestar names a Struct's component after its class."""
    names = {
        media["schema"]["$ref"].removeprefix(_REF)
        for _, _, operation in _operations(document)
        for media in operation.get("requestBody", {}).get("content", {}).values()
        if "$ref" in media.get("schema", {})
    }
    found: set[str] = set()
    for name in names:
        classes = [cls for cls in _structs() if cls.__name__ == name]
        if len(classes) != 1:
            raise RuntimeError(f"request body {name!r}: {len(classes)} msgspec Structs of that name")
        found |= _closed_structs(msgspec.inspect.type_info(classes[0]))
    return found


def _structs() -> Iterator[type[msgspec.Struct]]:
    pending = list(msgspec.Struct.__subclasses__())
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


def _closed_structs(info: msgspec.inspect.Type, seen: frozenset[str] = frozenset()) -> set[str]:
    if isinstance(info, msgspec.inspect.Metadata):
        return _closed_structs(info.type, seen)
    if isinstance(info, msgspec.inspect.UnionType):
        return set().union(*(_closed_structs(t, seen) for t in info.types))
    if isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.VarTupleType)):
        return _closed_structs(info.item_type, seen)
    if isinstance(info, msgspec.inspect.StructType):
        name = info.cls.__name__
        if name in seen:
            return set()
        found = {name} if info.forbid_unknown_fields else set()
        for field in info.fields:
            found |= _closed_structs(field.type, seen | {name})
        return found
    return set()


def _merge(target: dict[str, Any], rules: dict[str, Any]) -> None:
    for key, value in rules.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def _narrow(schema: dict[str, Any], rule: dict[str, Any]) -> None:
    branches = [branch for branch in schema.get("oneOf", []) if branch != {"type": "null"}]
    for branch in branches or [schema]:
        _merge(branch, copy.deepcopy(rule))


def _finish_parameter(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    alternatives = schema.get("oneOf")
    if not parameter.get("required") and alternatives and {"type": "null"} in alternatives:
        # A header or query value is absent or a string, never null.
        rest = [a for a in alternatives if a != {"type": "null"}]
        schema.pop("oneOf")
        parameter["schema"] = schema = {**rest[0], **schema} if len(rest) == 1 else {"oneOf": rest, **schema}
    known = PARAMETERS.get((parameter["in"], parameter["name"]))
    if known is not None:
        parameter["schema"] = {**schema, **copy.deepcopy(known["schema"])}
        if "description" in known:
            parameter["description"] = known["description"]
    if "description" in parameter:
        parameter["schema"].pop("description", None)  # said once, on the parameter


def _finish_responses(path: str, operation: dict[str, Any], *, raw_body: bool = False) -> None:
    responses = operation.setdefault("responses", {})
    codes: dict[int, list[str]] = {}
    for status, response in responses.items():
        content = response.get("content", {}).get(PROBLEM_JSON)
        if content is not None:
            codes[int(status)] = [example["value"]["code"] for example in content.get("examples", {}).values()]
    # Litestar's own 400 (a ValidationException) never reaches a caller: the problem mapping answers 422.
    if 400 not in codes:
        responses.pop("400", None)
    security = operation.get("security", [])
    credentials = [_CREDENTIAL_CODES[scheme] for requirement in security for scheme in requirement]
    if credentials and {} not in security:
        credentials.insert(0, "unauthorized")
    if credentials:  # the operation's security says who may call: its 401s are those of its credentials
        codes[401] = []
    shared: dict[int, list[str]] = {401: credentials, 429: ["rate-limited"], 431: STATUS_CODES[431]}
    shared[503] = STATUS_CODES[503]
    if raw_body:  # read as bytes, never refused for its shape: only its size
        shared[413] = STATUS_CODES[413]
    elif "requestBody" in operation:
        shared |= {400: STATUS_CODES[400], 413: STATUS_CODES[413], 422: STATUS_CODES[422]}
    elif operation.get("parameters"):
        shared[422] = STATUS_CODES[422]
    for status, status_codes in shared.items():
        for code in status_codes:
            _add(codes.setdefault(status, []), code)
    for status, status_codes in sorted(codes.items()):
        if status_codes:
            responses[str(status)] = _problem_response(path, status, status_codes, responses.get(str(status), {}))
    declared = {
        name: header
        for status, response in responses.items()
        if status.startswith("2")
        for name, header in response.get("headers", {}).items()
    }
    for status, response in responses.items():
        if status.startswith("2"):
            response["headers"] = {**declared, **copy.deepcopy(RATE_LIMIT_HEADERS)}
            for header in response["headers"].values():
                header.setdefault("schema", {"type": "string"})


def _problem_response(path: str, status: int, codes: list[str], declared: dict[str, Any]) -> dict[str, Any]:
    description = declared.get("description") or REFUSALS[status]
    description = description.split(". Codes:")[0]
    headers: dict[str, Any] = {}
    if status == 429:
        headers = {**copy.deepcopy(RATE_LIMIT_HEADERS), "Retry-After": {**_RETRY_AFTER, "required": True}}
    elif status == 503:
        headers = {"Retry-After": {**_RETRY_AFTER, "required": True}}
    elif "checkout-in-progress" in codes:
        headers = {"Retry-After": {**_RETRY_AFTER, "description": "Sent with checkout-in-progress"}}
    response: dict[str, Any] = {
        "description": f"{description}. Codes: {', '.join(f'`{code}`' for code in codes)}",
        "content": {
            PROBLEM_JSON: {
                "schema": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Problem"},
                        {"type": "object", "properties": {"code": {"type": "string", "enum": codes}}},
                    ]
                },
                "examples": {code: {"summary": code, "value": problem_example(status, code, path)} for code in codes},
            }
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _problem_schema() -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(Problem)["$defs"]["Problem"]
    schema["description"] = (
        "A refusal, as RFC 9457 defines it; branch on `code`, which is stable. Members beside the standard "
        "ones carry what a code needs (more may come):"
    )
    schema["properties"] |= {
        "field": {"type": "string", "description": "validation-error: the field, parameter or header at fault"},
        "errors": {"type": "array", "items": {}, "description": "validation-error: each fault found"},
        "available": {"type": "integer", "description": "sold-out: the seats left"},
        "limit": {
            "type": ["integer", "string"],
            "description": "limit-exceeded: the limit; promo-exhausted: which one (`total` or `customer`)",
        },
        "what": {"type": "string", "description": "limit-exceeded: `per-order`, `lines` or `events`"},
        "reason": {"type": "string", "description": "invalid-promo: why the code does not apply"},
        "retry_after_ms": {"type": "integer", "description": "rate-limited: milliseconds to wait"},
    }
    return schema


def _tidy(value: Any) -> Any:
    """Whole-numbered bounds as integers (msgspec's Meta gives floats: 100.0)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("minimum", "maximum") and isinstance(item, float) and item.is_integer():
                value[key] = int(item)
            else:
                _tidy(item)
    elif isinstance(value, list):
        for item in value:
            _tidy(item)
    return value


def render(document: dict[str, Any]) -> str:
    """The checked-in form: keys sorted, two-space indents, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_document() -> dict[str, Any]:
    """The document of a freshly built app (no server is reached; the settings do not show in it)."""
    from service.app import create_app
    from service.settings import Settings

    placeholders = {"ADMIN_API_KEY": "-", "CART_TOKEN_SECRET": "-", "JWT_SECRET": "-"}
    return create_app(Settings.from_env(placeholders)).openapi_schema.to_schema()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.http.openapi", description="The API's OpenAPI document")
    parser.add_argument("--write", action="store_true", help="write it to docs/openapi.json")
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in document differs")
    args = parser.parse_args(argv)
    text = render(build_document())
    if args.write:
        DOCUMENT_PATH.write_text(text)
        print(f"wrote {DOCUMENT_PATH}")
    elif args.check:
        if not DOCUMENT_PATH.exists() or DOCUMENT_PATH.read_text() != text:
            print(f"{DOCUMENT_PATH} differs from the app's document: run make openapi", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
