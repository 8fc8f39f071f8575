"""Security headers on every response, errors and unmatched paths included; a bound on
the size of request headers. Both are applied by the app's one outer layer
(``service.http.edge``), which every request passes, 404s and 405s included (Litestar runs
route middleware only for matched routes). The header lists are built once; a response
that already names a header keeps its own.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.types import Receive, Scope, Send

from service.http.problems import problem

_EVERYWHERE = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
# JSON answers load nothing and may be framed by no one. The schema viewer's pages and files
# (/schema, /schema/swagger, /schema/assets/..., service/http/schema_viewer.py) load from the
# service only: its scripts (no inline one), its styles (Swagger UI sets style attributes),
# images inline, the document and "Try it out" calls by fetch. Their JSON and YAML documents
# get the strict policy.
STRICT_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
VIEWER_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_CSP = ((b"content-security-policy", STRICT_CSP),)
_NO_STORE = ((b"cache-control", b"no-store"),)

_API = _EVERYWHERE + _CSP + _NO_STORE
_OTHER = _EVERYWHERE + _CSP
_SCHEMA_PAGE = (*_EVERYWHERE, (b"content-security-policy", VIEWER_CSP))
HEADER_NAMES = frozenset(name for headers in (_API, _OTHER, _SCHEMA_PAGE) for name, _ in headers)


def headers_for_path(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers of an answer to ``path``."""
    if path.startswith("/api/"):
        return _API
    if path.startswith("/schema") and not path.endswith((".json", ".yaml", ".yml")):
        return _SCHEMA_PAGE
    return _OTHER


MAX_HEADER_BYTES = 16 * 1024  # names and values together; a real caller sends a few KiB at most


async def refuse_large_headers(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer 431 to a request whose headers pass MAX_HEADER_BYTES, before anything reads
    them (tokens, cookies, the rate limiter). uvicorn's httptools parser has no limit of its
    own: a proxy in front must bound what the server buffers (docs/security.md)."""
    request: Request[Any, Any, Any] = Request(scope, receive)
    response = problem(
        431,
        "request-header-fields-too-large",
        "Request headers too large",
        f"The request's headers pass {MAX_HEADER_BYTES} bytes",
        request,
    )
    await send_response(scope, receive, send, response)


async def send_response(scope: Scope, receive: Receive, send: Send, response: Response[Any]) -> None:
    """Answer from a middleware with a Litestar response (the problem documents)."""
    await response.to_asgi_response(None, Request(scope, receive))(scope, receive, send)  # the app: request.app
