"""The OpenAPI document tells the truth about refusals: every one is an RFC 9457
``application/problem+json`` document (``Problem``), never Litestar's own error shape.

Handlers declare the refusals of their domain (``responses=problems(404, 409)``);
``document_refusals`` adds, once the document is built, those every ``/api/`` operation
shares: 429, 431 and 503 everywhere, 400/413/422 where there is a body or parameters, and
the ``RateLimit-*`` headers. It changes the document only, never a response.
"""

from __future__ import annotations

import msgspec
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import (
    OpenAPI,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    Schema,
)

from service.http.problems import PROBLEM_JSON


class Problem(msgspec.Struct):
    """A refusal (RFC 9457). Some carry more members: ``available`` (sold-out), ``limit`` and
    ``what`` (limit-exceeded), ``errors`` (validation-error), ``reason`` (invalid-promo)."""

    type: str
    title: str
    status: int
    detail: str
    code: str  # stable: callers branch on it
    instance: str | None = None


REFUSALS = {
    400: "The request could not be read (e.g. JSON that does not parse): bad-request",
    401: "Credentials missing, forged or expired: unauthorized, invalid-cart-token, invalid-token",
    403: "Not allowed: forbidden",
    404: "No such resource: not-found, tier-not-found",
    409: "Refused by the current state: sold-out, limit-exceeded, sale-not-open, sale-closed, "
    "currency-mismatch, checkout-in-progress, cart-empty, reservation-expired, promo-exhausted, "
    "seats-gone, conflict",
    413: "The body is larger than 16 KiB: payload-too-large",
    422: "The request is not valid: validation-error (or invalid-promo for a promo code)",
    431: "The request's headers pass 16 KiB: request-header-fields-too-large",
    429: "Too many requests: rate-limited; wait Retry-After seconds",
    503: "A backing store is unavailable; nothing was changed, try again: unavailable",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """For a handler's ``responses=``: the refusals of its domain, as problem documents."""
    return {
        status: ResponseSpec(
            data_container=Problem, media_type=PROBLEM_JSON, description=REFUSALS[status], generate_examples=False
        )
        for status in statuses
    }


_PROBLEM = Reference(ref="#/components/schemas/Problem")
_PROBLEM_SCHEMA = msgspec.json.schema(Problem)["$defs"]["Problem"]
_INTEGER = Schema(type=OpenAPIType.INTEGER)
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": OpenAPIHeader(schema=_INTEGER, description="Requests the bucket holds (the burst)"),
    "RateLimit-Remaining": OpenAPIHeader(schema=_INTEGER, description="Requests that may still come at once"),
    "RateLimit-Reset": OpenAPIHeader(schema=_INTEGER, description="Seconds until the bucket is full again"),
}
_RETRY_AFTER = OpenAPIHeader(schema=_INTEGER, description="Seconds to wait before trying again")
_RETRY_AFTER_REQUIRED = OpenAPIHeader(schema=_INTEGER, description=_RETRY_AFTER.description, required=True)


def _problem_response(status: int, headers: dict[str, OpenAPIHeader | Reference] | None = None) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=REFUSALS[status], headers=headers or None, content={PROBLEM_JSON: OpenAPIMediaType(schema=_PROBLEM)}
    )


def _operations(openapi: OpenAPI) -> list[tuple[str, Operation]]:
    found = []
    for path, item in (openapi.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation = getattr(item, method, None)
            if operation is not None:
                found.append((path, operation))
    return found


def document_refusals(openapi: OpenAPI) -> OpenAPI:
    """Add the refusals and headers every /api/ operation shares (see the module's docstring)."""
    # One definition of the problem document, from the Struct, whatever handlers generated.
    openapi.components.schemas = {**(openapi.components.schemas or {}), "Problem": _PROBLEM_SCHEMA}
    for path, operation in _operations(openapi):
        if not path.startswith("/api/"):
            continue
        responses = operation.responses if operation.responses is not None else {}
        operation.responses = responses
        shared = [429, 431, 503]
        if operation.request_body is not None:
            shared += [400, 413, 422]
        elif operation.parameters:
            shared += [422]
        responses.pop("400", None)  # Litestar's own 400 (ValidationException) never reaches a caller
        for status in shared:
            responses.setdefault(str(status), _problem_response(status))
        # Litestar writes every response inline (no Reference): the ones amended below.
        inline = {status: r for status, r in responses.items() if isinstance(r, OpenAPIResponse)}
        inline["429"].headers = {**RATE_LIMIT_HEADERS, "Retry-After": _RETRY_AFTER_REQUIRED}
        inline["503"].headers = {"Retry-After": _RETRY_AFTER}
        success = [response for status, response in inline.items() if status.startswith("2")]
        declared = {name: header for response in success for name, header in (response.headers or {}).items()}
        for response in success:
            response.headers = {**declared, **RATE_LIMIT_HEADERS}
        for response in inline.values():
            for media_type, content in (response.content or {}).items():
                if media_type == PROBLEM_JSON:
                    content.schema = _PROBLEM
    return openapi
