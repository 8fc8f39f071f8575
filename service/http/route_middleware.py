"""Middleware on some routes only, on this app's copies of their handlers.

Litestar gives a route with any middleware (its handler's, or the app's) a second
exception-handling layer around the handler: about 1 us per request, paid by every route
for app-wide middleware, ``/health/live`` included, even where the middleware lets the
request through untouched. So middleware that acts on some routes (the fast lane, the
``/api/`` rate limit) is put on those routes' handlers instead. The handlers are copied:
the module's handler objects are shared by every app built in a process (tests build many).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import copy

from litestar.handlers import HTTPRouteHandler
from litestar.types import ControllerRouterHandler, Middleware


def with_route_middleware(
    handlers: Sequence[ControllerRouterHandler],
    middleware: Middleware,
    *,
    where: Callable[[HTTPRouteHandler], bool],
    outermost: bool = False,
) -> list[ControllerRouterHandler]:
    """``handlers``, each route handler ``where`` accepts copied with ``middleware`` as its
    innermost middleware (``outermost``: before the ones it has); the others as they are."""
    result: list[ControllerRouterHandler] = []
    for handler in handlers:
        if isinstance(handler, HTTPRouteHandler) and where(handler):
            own = copy(handler)
            mine = list(handler.middleware or [])
            own.middleware = [middleware, *mine] if outermost else [*mine, middleware]
            result.append(own)
        else:
            result.append(handler)
    return result
