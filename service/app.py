"""The Litestar application: routes, problem mapping, and the lifespan that owns the
Redis client and the PostgreSQL pool. ``uvicorn service.app:app`` serves it."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from litestar import Litestar, Response, get
from litestar.config.cors import CORSConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from service.cart import handlers as cart_handlers, merge_handlers
from service.events import admin_handlers as webhook_admin_handlers
from service.health import live, ready
from service.http import edge, fastlane, schema_viewer
from service.http.openapi import document_refusals
from service.http.options import methods_of, with_options
from service.http.problems import EXCEPTION_HANDLERS
from service.http.ratelimit import with_rate_limit
from service.inventory import handlers as tier_handlers
from service.logs import configure_logging
from service.metrics import render_latest
from service.orders import admin_handlers as order_admin_handlers, handlers as order_handlers
from service.payments import admin_handlers as payment_admin_handlers, handlers as payment_handlers
from service.promo import handlers as promo_handlers
from service.settings import Settings
from service.storefront import handlers as storefront
from service.wiring import DEPENDENCIES, close_services, open_services

MAX_BODY_BYTES = fastlane.MAX_BODY_BYTES
GC_YOUNG_THRESHOLD = 10_000  # tracked allocations between young collections (default 700)


@get("/metrics", summary="Prometheus metrics", tags=["ops"], include_in_schema=False, sync_to_thread=False)
def metrics() -> Response[bytes]:
    edge.TIMINGS.flush()  # this process's request timings, exact (service/http/timings.py)
    body, content_type = render_latest()
    # The exposition type already names its charset; Litestar would add a second one.
    return Response(body, headers={"content-type": content_type})


@contextmanager
def settled_garbage_collector() -> Iterator[None]:
    """Keep the collector's pauses out of the requests' latency, while the app runs.

    What exists once the app has started (routes, OpenAPI schema, clients, scripts:
    about 60,000 tracked objects) lives as long as the app: ``freeze`` puts it out of
    the collector's reach, so a full collection walks only what requests made. Young
    collections are made rarer: a request allocates hundreds of tracked objects, nearly
    all freed by reference counting when it ends, and the default threshold (700) ran a
    collection every few requests. Both are undone at shutdown (tests start many apps in
    one process). ``make bench``, add phase: p99 32 ms -> 12-14 ms (docs/performance.md).
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def create_app(settings: Settings | None = None, *, fast_lane: bool = True) -> Litestar:
    """The app. ``fast_lane=False`` sends every request through the Litestar handlers
    (the tests compare both ways; see ``service.http.fastlane``)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        app.state.services = services = await open_services(settings)
        try:
            with settled_garbage_collector():
                yield
        finally:
            await close_services(services)

    handlers = [
        *cart_handlers.ROUTES,
        *merge_handlers.ROUTES,
        *tier_handlers.ROUTES,
        *order_admin_handlers.ROUTES,
        *promo_handlers.ROUTES,
        *order_handlers.ROUTES,
        *webhook_admin_handlers.ROUTES,
        *payment_handlers.ROUTES,
        *payment_admin_handlers.ROUTES,
        live,
        ready,
        metrics,
        *storefront.ROUTES,  # the buyer's pages, outside /api/ (docs/storefront.md)
    ]
    cors = (
        # Credentials (the cart cookie) only for named origins: with "*" Litestar would echo any
        # origin and let every site send the buyer's cookie.
        CORSConfig(
            allow_origins=list(settings.cors_allow_origins),
            allow_credentials="*" not in settings.cors_allow_origins,
            allow_methods=[*methods_of(handlers)],  # a preflight is answered before routing: the app's methods
            allow_headers=["content-type", "authorization", "x-cart-token", "x-order-token", "idempotency-key"],
            expose_headers=[
                "x-cart-token",
                "x-request-id",
                "retry-after",
                "ratelimit-limit",
                "ratelimit-remaining",
                "ratelimit-reset",
            ],
        )
        if settings.cors_allow_origins
        else None
    )
    # OPTIONS lists every method of a path; the cart's hottest routes have the fast lane and
    # every /api/ route the rate limit outside it (when on), as their own middleware: a route
    # with none gets one exception-handling layer from Litestar instead of two
    # (service/http/route_middleware.py).
    routes = with_options(fastlane.with_fast_lane(handlers, enabled=fast_lane))
    if settings.rate_limit_per_minute > 0:
        routes = with_rate_limit(routes)
    app = Litestar(
        route_handlers=routes,
        lifespan=[lifespan],
        dependencies=DEPENDENCIES,  # each area's service, handed to its handlers by name
        exception_handlers=EXCEPTION_HANDLERS,
        # No app middleware: what every request gets, matched or not, is the edge's (below);
        # the rate limit and the fast lane are their routes' own (see ``routes``).
        cors_config=cors,
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title="ticket-cart",
            version="0.1.0",
            path="/schema",
            render_plugins=schema_viewer.render_plugins(),  # Swagger UI from the service's own files
            openapi_router=schema_viewer.openapi_router(),
            components=Components(
                security_schemes={
                    "adminKey": SecurityScheme(type="apiKey", name="X-Admin-Key", security_scheme_in="header"),
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                }
            ),
        ),
        debug=False,
    )
    document_refusals(app)  # finished when first built, on first use
    # One outer layer: header bound, request id, security headers, timing (service/http/edge.py).
    return edge.wrap_app(app)


def __getattr__(name: str) -> Litestar:
    # `uvicorn service.app:app` builds the app on first access, so importing this module
    # (tests, tools) does not read the environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
