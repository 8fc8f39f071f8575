"""The one ASGI layer around the whole app: what every request gets, whatever answers it.

For each HTTP request, 404s, 405s and CORS preflights included: the bound on request
headers (431), the request id (``X-Request-ID``, echoed or made, and in every log line of
the request), the security headers (``service.http.security``) and the timing metric by
route template. It wraps Litestar's own ASGI handler (``wrap_app``), outside its exception
handling and CORS, so a request pays for one extra coroutine and one ``send`` wrapper in
all. (These were two route middlewares and a ``before_send`` hook.) In process, with this
layer taken away ``/health/live`` costs what a bare Litestar route does (21 us); with it,
about 7 us more, by taking each part away in turn: the request id and its context variable
about 2, the timing (gathered per process, service/http/timings.py) 1.5, the security
headers and the ``send`` wrapper 1.3, the coroutine and the header walk the rest
(docs/performance.md).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable
from typing import Any

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.http.security import HEADER_NAMES, MAX_HEADER_BYTES, headers_for_path, refuse_large_headers
from service.http.timings import RequestTimings
from service.logs import REQUEST_ID
from service.metrics import HTTP_LATENCY_BUCKETS, HTTP_REQUEST_DURATION

_REQUEST_ID = b"x-request-id"
_SECURITY_NAMES = HEADER_NAMES
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A made request id: this process's random half, then a counter (32 hex digits, unique
# across processes without a system call per request).
_PROCESS_PART = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def wrap_app(app: Litestar) -> Litestar:
    """Put the edge around ``app``'s ASGI handler (the router with its exception handling
    and CORS); Litestar calls it for every request after setting up the scope."""
    app.asgi_handler = edge(app.asgi_handler)
    return app


def new_request_id() -> bytes:
    return f"{_PROCESS_PART}{next(_COUNTER):016x}".encode()


def edge(app: ASGIApp) -> ASGIApp:
    async def handle(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = b""
        size = 0
        for name, value in scope["headers"]:
            size += len(name) + len(value)
            if name == _REQUEST_ID:
                request_id = value[:128]
        if not request_id:
            request_id = new_request_id()
        text_id = request_id.decode("latin-1")
        bound = REQUEST_ID.set(text_id)
        security = headers_for_path(scope["path"])
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers") or []
                tagged = (_REQUEST_ID, request_id)
                # Litestar writes header names in lower case. Most answers name none of the
                # security headers: they get the whole tuple without a per-header look.
                for name, _ in headers:
                    if name in _SECURITY_NAMES:  # the answer's own is kept
                        present = [name for name, _ in headers]
                        message["headers"] = [*headers, tagged, *(item for item in security if item[0] not in present)]
                        break
                else:
                    message["headers"] = [*headers, tagged, *security]
            await send(message)

        try:
            if size > MAX_HEADER_BYTES:
                await refuse_large_headers(scope, receive, send_with_headers)
            else:
                await app(scope, receive, send_with_headers)
        finally:
            REQUEST_ID.reset(bound)
            method = scope["method"]
            key = (scope.get("route_handler"), method if method in _METHODS else "OTHER", status)  # bounded labels
            TIMINGS.observe(key, time.perf_counter() - started)

    return handle


def _labels(key: tuple[Any, str, int]) -> tuple[str, str, str]:
    handler, method, status = key
    return _route(handler), method, str(status)


# The timing metric, by (route handler, method, status): gathered here, added a second later.
TIMINGS = RequestTimings(HTTP_REQUEST_DURATION, HTTP_LATENCY_BUCKETS, _labels)


def _route(handler: Any) -> str:
    """The route template of a handler, as the metric's label; "unmatched" without one."""
    if handler is not None:
        paths: Iterable[str] | None = getattr(handler, "paths", None)
        if paths:
            return next(iter(paths)).replace(":str}", "}")
    return "unmatched"
