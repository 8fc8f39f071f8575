"""Liveness and readiness. Live: the process answers. Ready: Redis and PostgreSQL answer."""

from __future__ import annotations

import asyncio

from litestar import Request, Response, get

from service.http.services import services

_CHECK_TIMEOUT_SECONDS = 1.0


@get("/health/live", summary="The process is up", tags=["ops"], sync_to_thread=False)
def live() -> dict[str, str]:
    return {"status": "ok"}


@get("/health/ready", summary="Redis and PostgreSQL answer", tags=["ops"])
async def ready(request: Request) -> Response[dict[str, str]]:
    s = services(request)
    checks: dict[str, str] = {}

    async def check(name: str, probe) -> None:
        try:
            await asyncio.wait_for(probe(), _CHECK_TIMEOUT_SECONDS)
            checks[name] = "ok"
        except Exception as exc:  # any failure means not ready; say which
            checks[name] = f"failing: {type(exc).__name__}"

    await asyncio.gather(check("redis", s.redis.ping), check("postgres", lambda: s.pool.fetchval("SELECT 1")))
    healthy = all(v == "ok" for v in checks.values())
    return Response({"status": "ok" if healthy else "unavailable", **checks}, status_code=200 if healthy else 503)
