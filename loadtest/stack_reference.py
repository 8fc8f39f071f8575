"""The stack's own limit (issue #18): a minimal Litestar app that ``make bench`` serves
beside the service, with the same uvicorn flags, and measures in the same run.

Two routes. ``GET /ping`` answers a fixed small JSON body: the least any route costs in
this stack, the reference for the service's ``/health/live``. ``POST /eval`` runs one
``EVALSHA`` of a one-line script (it touches no key) through the service's own client
(``create_redis`` wrapped in ``AutoPipelined``, as ``service.wiring`` builds it for the
cart scripts): the least an add-to-cart can cost, its reference. No middleware, no
OpenAPI, no logging configuration; it reads no request body.

It runs under the service's garbage-collector settings (``settled_garbage_collector``),
which are process tuning rather than work per request: the two apps then differ only in
what a request does. Settings come from the environment as the service reads them
(``Settings.from_env``: REDIS_URL, REDIS_CLUSTER, the timeouts), so it needs the
service's variables, secrets included. ``uvicorn loadtest.stack_reference:app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

from litestar import Litestar, get, post
from litestar.datastructures import State
from redis.asyncio import Redis

from service.app import settled_garbage_collector
from service.redis.autopipeline import AutoPipelined
from service.redis.client import create_redis
from service.settings import Settings

SCRIPT = "return 1"  # one line, no key: what remains is the call itself


@get("/ping", sync_to_thread=False)
def ping() -> dict[str, str]:
    return {"status": "ok"}  # the same body as the service's /health/live


@post("/eval", status_code=200)
async def evaluate(state: State) -> dict[str, int]:
    result = await state.scripts.evalsha(state.sha, 0)
    return {"result": int(result)}


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        redis = create_redis(settings)
        # As service.wiring.build_services: auto-pipelined unless on a Cluster.
        scripts = redis if settings.redis_cluster else AutoPipelined(cast(Redis, redis))  # type: ignore[abstract]
        try:
            sha = await scripts.script_load(SCRIPT)
            app.state.scripts = scripts
            app.state.sha = sha.decode() if isinstance(sha, bytes) else sha
            with settled_garbage_collector():
                yield
        finally:
            if isinstance(scripts, AutoPipelined):
                await scripts.aclose()
            await redis.aclose()

    return Litestar(
        route_handlers=[ping, evaluate],
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def __getattr__(name: str) -> Litestar:
    # As service.app: built on first access, so importing this module reads no environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
