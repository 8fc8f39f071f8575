"""Request timing (Prometheus, by route template) and the X-Request-ID echo.

A plain ASGI middleware: cheaper than a Litestar middleware class on the hot path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import REQUEST_ID
from service.metrics import HTTP_REQUEST_DURATION

_REQUEST_ID = b"x-request-id"
# The labelled histogram of each (route, method, status): looked up once, not per request.
_timers: dict[tuple[str, str, int], Any] = {}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(scope: Scope) -> str:
    handler = scope.get("route_handler")
    if handler is not None:
        paths: Iterable[str] | None = getattr(handler, "paths", None)
        if paths:
            return next(iter(paths)).replace(":str}", "}")
    return "unmatched"


def observe_requests(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = b""
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                request_id = value[:128]
                break
        if not request_id:
            request_id = os.urandom(16).hex().encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode("latin-1")
        bound = REQUEST_ID.set(scope["state"]["request_id"])
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (_REQUEST_ID, request_id)]
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(bound)
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded labels
            key = (_route(scope), method, status)
            timer = _timers.get(key)
            if timer is None:
                timer = _timers[key] = HTTP_REQUEST_DURATION.labels(key[0], key[1], str(status))
            timer.observe(time.perf_counter() - started)

    return middleware
