"""``OPTIONS`` answers every method of the path, not only those of one handler.

Litestar 2 gives each path an ``OPTIONS`` handler that lists the methods the path had when
its *first* handler was registered: ``GET /api/cart`` and ``DELETE /api/cart`` are two
handlers, so ``OPTIONS /api/cart`` answered ``Allow: GET, OPTIONS`` (litestar#4169, fixed in
Litestar 3 only). ``with_options`` puts, before the app's handlers, one ``OPTIONS`` handler per
path that lists the methods of every handler of that path; Litestar then adds none of its own.
Routers registered whole (``/schema``, which Litestar builds around the viewer) keep Litestar's
answer, right as long as each of their paths has one handler: tests/http/test_options.py checks
every path of the app.

CORS preflights (an ``OPTIONS`` with an ``Origin``) never reach these handlers: Litestar's
CORS middleware answers them before routing, with ``Access-Control-Allow-Methods`` from the
CORS config, which ``service.app`` sets to ``methods_of`` the app's handlers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from litestar import Response, route
from litestar.enums import HttpMethod
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import ControllerRouterHandler, Method


def _methods_by_path(handlers: Iterable[ControllerRouterHandler]) -> dict[str, set[Method]]:
    by_path: dict[str, set[Method]] = {}
    for handler in handlers:
        if not isinstance(handler, HTTPRouteHandler):
            # A Router or Controller would need its own walk; none is registered today, and
            # tests/http/test_options.py fails for any path whose Allow is incomplete.
            raise TypeError(f"with_options takes route handlers only, not {handler!r}")
        for path in handler.paths:
            by_path.setdefault(path, set()).update(handler.http_methods)
    return by_path


def methods_of(handlers: Iterable[ControllerRouterHandler]) -> list[Method]:
    """Every method the handlers take, with OPTIONS, sorted (CORS' allowed methods)."""
    methods: set[Method] = {"OPTIONS"}
    for path_methods in _methods_by_path(handlers).values():
        methods |= path_methods
    return sorted(methods)


def _options_handler(path: str, methods: set[Method]) -> HTTPRouteHandler:
    allow = ", ".join(sorted(methods | {"OPTIONS"}))

    def answer_options() -> Response[None]:
        return Response(content=None, status_code=HTTP_204_NO_CONTENT, headers={"Allow": allow})

    return route(path, http_method=[HttpMethod.OPTIONS], include_in_schema=False, sync_to_thread=False)(answer_options)


def with_options(handlers: Sequence[ControllerRouterHandler]) -> list[ControllerRouterHandler]:
    """``handlers``, preceded by one OPTIONS handler per path that has none of its own.
    They come first: a path's first registration must already carry OPTIONS, or Litestar
    adds its own (the incomplete one) and refuses a second."""
    by_path = _methods_by_path(handlers)
    extra = [_options_handler(path, methods) for path, methods in by_path.items() if "OPTIONS" not in methods]
    return [*extra, *handlers]
