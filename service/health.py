"""Liveness and readiness.

Live: the process answers. Ready: it can serve carts, that is Redis answers and the Lua
scripts are loaded (a check finding them not loaded, as after a start without Redis,
loads them). PostgreSQL's state is in the body, as the background monitor last saw it
(``service.db.monitor``), and never makes the process unready: carts need only Redis,
and checkouts answer 503 while PostgreSQL is down. Nothing here takes a pool connection.

    200 {"status": "ok", "redis": "ok", "scripts": "loaded", "postgres": "ok"}
    200 {"status": "ok", "redis": "ok", "scripts": "loaded", "postgres": "unreachable: ConnectionRefusedError"}
    503 {"status": "unavailable", "redis": "unreachable: TimeoutError", "scripts": "loaded", "postgres": "ok"}
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from service.wiring import services_of

_CHECK_TIMEOUT_SECONDS = 1.0


@get("/health/live", operation_id="live", summary="The process is up", tags=["ops"], sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/health/ready",
    operation_id="ready",
    summary="Can serve carts: Redis answers, scripts loaded; PostgreSQL's state reported",
    tags=["ops"],
    responses={
        503: ResponseSpec(
            dict[str, str],
            description="Not ready: Redis does not answer or the scripts are not loaded (the body says which)",
            generate_examples=False,
        )
    },
)
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
    s = services_of(request.app)
    try:
        await asyncio.wait_for(s.redis.ping(), _CHECK_TIMEOUT_SECONDS)
        redis = "ok"
    except Exception as exc:  # any failure means not ready; say which
        redis = f"unreachable: {type(exc).__name__}"
    scripts = "loaded" if s.scripts.loaded else "not loaded"
    if redis == "ok" and not s.scripts.loaded:
        try:
            await asyncio.wait_for(s.scripts.load(), _CHECK_TIMEOUT_SECONDS)
            scripts = "loaded"
        except Exception as exc:
            scripts = f"not loaded: {type(exc).__name__}"
    can_serve_carts = redis == "ok" and scripts == "loaded"
    body = {
        "status": "ok" if can_serve_carts else "unavailable",
        "redis": redis,
        "scripts": scripts,
        "postgres": s.postgres.state,
    }
    return Response(body, status_code=200 if can_serve_carts else 503)
