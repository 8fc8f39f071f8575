"""CPU per request of the app itself, without sockets or a load generator.

``python -m loadtest.inprocess [--requests N] [--profile]`` builds ``service.app`` from the
environment (REDIS_URL, DATABASE_URL, KEY_PREFIX; the secrets it lacks filled in as by
``make run``), creates a roomy tier through the admin API, then drives ``GET /health/live`` and
``POST /api/cart/items`` (a new cart each time, the costliest add) through the ASGI
interface with 64 concurrent callers, and prints the process's CPU time per request; also
the stack reference's ``GET /ping`` (loadtest/stack_reference.py) called the same way, so
``/health/live`` minus ``/ping`` is what the service's own layers cost a request. The
steadiest way to see what a change to the hot path buys on a busy machine.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time
import uuid
from typing import Any

import uvloop

from devtools.dev_secrets import development_secrets
from loadtest import stack_reference
from loadtest.bench import delete_keys
from service.app import create_app
from service.settings import Settings

CALLERS = 64


async def _call(app: Any, method: str, path: str, headers: list, body: bytes = b"") -> dict:
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        return {}

    answer: dict = {}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    await app(scope, receive, send)
    return answer


_LIFESPANS: set[asyncio.Future[Any]] = set()  # the app's lifespan task, kept while it runs


async def _started(app: Any) -> None:
    events: asyncio.Queue = asyncio.Queue()
    await events.put({"type": "lifespan.startup"})
    ready = asyncio.Event()

    async def send(message: dict) -> None:
        if message["type"] == "lifespan.startup.complete":
            ready.set()

    _LIFESPANS.add(
        asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, events.get, send))
    )
    await ready.wait()


# Its own key prefix unless KEY_PREFIX names one: each run makes a cart per add (thousands),
# which must not pile up among make run's keys; they are deleted when the run ends. Its 64
# callers share one address, so the rate limits are off unless RATE_LIMIT_PER_MINUTE is set
# (as in make bench).
INPROCESS_KEY_PREFIX = "tcinprocess:"


async def measure(requests: int, profile: bool) -> None:
    env = {"KEY_PREFIX": INPROCESS_KEY_PREFIX, "RATE_LIMIT_PER_MINUTE": "0", **os.environ}
    settings = Settings.from_env({**env, **development_secrets(env)})
    try:
        await _measure(settings, requests, profile)
    finally:
        if settings.key_prefix == INPROCESS_KEY_PREFIX:
            deleted = await delete_keys(settings.redis_url, INPROCESS_KEY_PREFIX)
            print(f"deleted {deleted:,} keys under {INPROCESS_KEY_PREFIX}")


async def _measure(settings: Settings, requests: int, profile: bool) -> None:
    app = create_app(settings)
    await _started(app)
    reference = stack_reference.create_app(settings)  # what /health/live is judged against
    await _started(reference)
    tier = str(uuid.uuid4())
    definition = (
        f'{{"event_id":"{uuid.uuid4()}","name":"inprocess","price":1000,"currency":"VND",'
        f'"quantity_total":10000000,"max_per_order":10}}'
    ).encode()
    admin = [(b"x-admin-key", settings.admin_api_key.encode()), (b"content-type", b"application/json")]
    assert (await _call(app, "PUT", f"/api/admin/tiers/{tier}", admin, definition))["status"] in (200, 201)
    add = (f'{{"tier_id":"{tier}","quantity":1}}').encode()
    json_header = [(b"content-type", b"application/json")]
    cases = [
        ("GET /ping (stack reference)", reference, "GET", "/ping", [], b""),
        ("GET /health/live", app, "GET", "/health/live", [], b""),
        ("POST /api/cart/items", app, "POST", "/api/cart/items", json_header, add),
    ]

    for name, target, method, path, headers, body in cases * 2:  # the first round warms up
        # B023: the callers run (gathered) within this iteration, so its loop variables.
        async def caller(n: int) -> None:
            for _ in range(n):
                assert (await _call(target, method, path, headers, body))["status"] < 300  # noqa: B023

        profiler = cProfile.Profile() if profile and method == "POST" else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        await asyncio.gather(*(caller(requests // CALLERS) for _ in range(CALLERS)))
        if profiler:
            profiler.disable()
        done = requests // CALLERS * CALLERS
        print(
            f"{name:28} {1e6 * (time.process_time() - cpu) / done:6.0f} us CPU per request, "
            f"{done / (time.perf_counter() - wall):7.0f} req/s in process"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.inprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6400)
    parser.add_argument("--profile", action="store_true", help="cProfile the second add-to-cart round")
    args = parser.parse_args()
    uvloop.run(measure(args.requests, args.profile))


if __name__ == "__main__":
    main()
