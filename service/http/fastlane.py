"""The fast lane: the hottest routes answered without Litestar's per-handler machinery.

Litestar still routes the request, and every middleware (timing, request id, header
bound, rate limit, CORS) and the security headers still apply; only the last step,
Litestar's handler call (signature model, dependency injection, ``Response`` objects),
is replaced by a plain function. That step cost about half of an add-to-cart's CPU
(docs/performance.md).

A route opts in by naming a fast function in its handler's ``opt``::

    @post("/api/cart/items", ..., opt={FAST_LANE: fast_add_item})

``fast(scope, body)`` returns an :class:`Answer`, or ``None`` to hand the request to the
Litestar handler as if the fast lane did not exist. A fast function returns ``None`` for
anything but a well-formed request, *before* it changes anything, so every malformed
request gets Litestar's own 4xx answer. An exception raised by a fast function is
answered by the app's exception handlers (``service.http.problems``), exactly as one
raised by the handler. The Litestar handler stays the documented contract (OpenAPI) and
must do the same as its fast function: ``tests/http/test_fastlane.py`` compares them.

What the fast lane skips is the handler's own machinery: its guards, dependencies and
before/after-request hooks do not run. A route that needs any of those must not opt in.

The lane is the opted-in routes' own (innermost) middleware (``with_fast_lane``), not the
app's: as app middleware it cost every other route (``/health/live``, the admin API) its call
and a second exception-handling layer for nothing, about 1.2 us per request in process
(service/http/route_middleware.py, docs/performance.md).

``create_app(fast_lane=False)`` turns the lane off (every request takes the Litestar handler).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, ControllerRouterHandler, Receive, ReceiveMessage, Scope, Send

from service.http.problems import render_exception
from service.http.route_middleware import with_route_middleware
from service.http.security import send_response

FAST_LANE = "fast_lane"
MAX_BODY_BYTES = 16 * 1024  # also Litestar's request_max_body_size (service/app.py)

_encode = msgspec.json.Encoder().encode
_JSON = (b"content-type", b"application/json")


class Answer(msgspec.Struct, frozen=True):
    """What a fast function answers: a status, a msgspec-encodable body, extra headers."""

    status: int
    body: Any
    headers: dict[str, str] = {}


FastFunction = Callable[[Scope, bytes], Awaitable[Answer | None]]


def fast(
    operation: Callable[..., Awaitable[Answer]],
    *,
    path: str | None = None,
    body: msgspec.json.Decoder[Any] | None = None,
    header: bytes | None = None,
) -> FastFunction:
    """The fast lane's function of an operation ``operation(scope, [path value], [body],
    [header value])``: the path parameter ``path``, the body decoded strictly by ``body``,
    the raw header ``header`` (lower case), each only when named. A body the decoder does not
    take goes to the Litestar handler (None), whose own validation answers it."""

    async def run(scope: Scope, raw: bytes) -> Answer | None:
        args: list[Any] = []
        if path is not None:
            args.append(scope["path_params"][path])
        if body is not None:
            try:
                args.append(body.decode(raw))
            except msgspec.MsgspecError:
                return None
        if header is not None:
            args.append(next((value.decode("latin-1") for key, value in scope["headers"] if key == header), None))
        return await operation(scope, *args)

    return run


async def _read_body(scope: Scope, receive: Receive) -> tuple[bytes | None, list[ReceiveMessage]]:
    """The request body (None when it is too large or the client left) and the messages
    read, to give back to the Litestar handler if the fast lane passes."""
    messages: list[ReceiveMessage] = []
    chunks: list[bytes] = []
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit() or int(value) > MAX_BODY_BYTES:
                return None, messages
            break
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, messages
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None, messages
        if not message.get("more_body", False):
            break
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), messages


def _replaying(messages: list[ReceiveMessage], receive: Receive) -> Receive:
    """A receive that first gives back what the fast lane already read."""
    pending = list(messages)

    async def replay() -> ReceiveMessage:
        return pending.pop(0) if pending else await receive()

    return replay


def with_fast_lane(
    handlers: Sequence[ControllerRouterHandler], *, enabled: bool = True
) -> list[ControllerRouterHandler]:
    """``handlers``, each one that names a fast function in its ``opt`` with the fast lane as
    its innermost middleware (service/http/route_middleware.py); the others as they are."""
    if not enabled:
        return list(handlers)
    return with_route_middleware(handlers, fast_lane, where=lambda handler: FAST_LANE in handler.opt)


def fast_lane(app: ASGIApp) -> ASGIApp:
    """The route's innermost middleware: runs its fast function (``with_fast_lane``)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        fast: FastFunction | None = handler.opt.get(FAST_LANE) if handler is not None else None
        if fast is None or scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        body = b""
        read: list[ReceiveMessage] = []
        if scope["method"] in ("POST", "PUT", "PATCH"):
            received, read = await _read_body(scope, receive)
            if received is None:
                await app(scope, _replaying(read, receive), send)
                return
            body = received
        try:
            answer = await fast(scope, body)
        except Exception as exc:  # answered as the handler's would be, inside the middlewares
            await send_response(scope, receive, send, render_exception(Request(scope, receive), exc))
            return
        if answer is None:
            await app(scope, _replaying(read, receive) if read else receive, send)
            return
        payload = _encode(answer.body)
        headers = [_JSON, (b"content-length", str(len(payload)).encode())]
        headers += [(name.encode(), value.encode("latin-1")) for name, value in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    return middleware
