"""Every refusal as an RFC 9457 problem (``application/problem+json``) with a stable code.

Bad input never yields a 500: Litestar's own validation errors become 422
``validation-error``, and so does a value PostgreSQL refuses (``asyncpg.DataError``: NUL in
text, a date out of range, ...); a Redis or PostgreSQL outage becomes 503 ``unavailable``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError

from service.errors import DomainError
from service.validation import NO_NUL_MESSAGE, NO_NUL_PATTERN

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("ticket_cart.http")

_HTTP_CODES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    413: "payload-too-large",
    415: "unsupported-media-type",
    429: "rate-limited",
}


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    request: Request[Any, Any, Any] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[Any]:
    body: dict[str, Any] = {
        "type": f"https://ticket-cart.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
    body.update(extra)
    return Response(content=body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Response[Any]:
    return problem(exc.status, exc.code, exc.title, exc.detail, request, exc.headers, **exc.extra)


def validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Litestar's (msgspec's) refusal of a body or parameter: the detail says what is wrong
    with which field, and ``field`` names it when there is one, as ValidationFailed does.
    A field inside the body is named by its path (``quantity``, ``tier_ids[1]``,
    ``items[0].x``), whether it is unknown, missing, of the wrong type or out of bounds."""
    errors = [_readable(_named(e)) for e in exc.extra] if isinstance(exc.extra, list) else []
    extra: dict[str, Any] = {"errors": errors}
    described = [e for e in errors if isinstance(e, dict) and (e.get("key") or e.get("source"))]
    if described:
        detail = "; ".join(f"{e.get('key') or e['source']}: {e.get('message', 'not valid')}" for e in described)
        keyed = [e for e in described if e.get("key")]
        if len(keyed) == 1:
            extra["field"] = keyed[0]["key"]
    else:
        detail = _detail(exc.detail)
    return problem(422, "validation-error", "The request is not valid", detail, request, **extra)


# msgspec names an unknown or missing field in its message, and the path of the object
# holding it after " - at" (which Litestar turns into the key): the field is both together.
_OBJECT_FIELD = re.compile(r"Object (?:contains unknown|missing required) field `(?P<name>.+)`")
_BODY = "data"  # the handlers' body parameter: Litestar's key of an error at the body's top


def _named(error: Any) -> Any:
    """The error of a body keyed by the offending field's path. Litestar keys it by the path
    msgspec gave, less ``$.`` (``items[0].x``), or by ``data`` at the body's top; an unknown or
    missing field is named only in the message, so its name joins the key. An error of the
    body as a whole (``Expected `object`, got `array```) has no key."""
    if not isinstance(error, dict) or error.get("source") != "body":
        return error
    key, message = error.get("key", _BODY), str(error.get("message", ""))
    parent = "" if key == _BODY else key
    if (found := _OBJECT_FIELD.fullmatch(message)) is not None:
        return {**error, "key": f"{parent}.{found['name']}" if parent else found["name"]}
    if not parent:
        return {name: value for name, value in error.items() if name != "key"}
    return error


def _readable(error: Any) -> Any:
    """msgspec words a failed Text pattern as the regex itself; say what it means."""
    if isinstance(error, dict) and repr(NO_NUL_PATTERN) in str(error.get("message", "")):
        return {**error, "message": NO_NUL_MESSAGE}
    return error


def data_error(request: Request[Any, Any, Any], exc: asyncpg.DataError) -> Response[Any]:
    """A value PostgreSQL (or asyncpg's encoder) refused: bad data, never an outage or a 500.
    The edge (``service.validation``) should have refused it first: log it, to close the gap."""
    log.warning("data refused by PostgreSQL on %s %s: %r", request.method, request.url.path, exc)
    return problem(
        422,
        "validation-error",
        "The request is not valid",
        "A value in the request is not one the data store accepts",
        request,
    )


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return internal_error(request, exc)
    code = _HTTP_CODES.get(status, "bad-request")
    return problem(status, code, code.replace("-", " ").capitalize(), _detail(exc.detail), request, exc.headers)


def unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.warning("backing service unavailable on %s: %r", request.url.path, exc)
    return problem(
        503,
        "unavailable",
        "A backing service is unavailable; try again",
        "The service could not reach its data store; nothing was changed",
        request,
        {"Retry-After": "1"},
    )


# A backing store that cannot be reached or answered too late: 503, never 500.
UNAVAILABLE_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    OSError,
    TimeoutError,
)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return unavailable(request, exc)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal-error", "Internal error", "An unexpected error occurred", request)


def _detail(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    return msgspec.json.encode(detail).decode()


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error,
    ValidationException: validation_error,
    asyncpg.DataError: data_error,
    HTTPException: http_error,
    Exception: internal_error,
}


def render_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """The answer the app's exception handlers give ``exc`` (for code outside a handler)."""
    for cls in type(exc).__mro__:
        handler = EXCEPTION_HANDLERS.get(cls)
        if handler is not None:
            return handler(request, exc)
    return internal_error(request, exc)
