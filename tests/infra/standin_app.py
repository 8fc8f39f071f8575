"""A trivial ASGI app standing in for service.app in the dev server's tests.

It answers every HTTP request with 200 and the REDIS_URL / DATABASE_URL it was started
with, so a test can check what the dev server handed to its child.
"""

import json
import os


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = json.dumps({name: os.environ.get(name) for name in ("REDIS_URL", "DATABASE_URL")})
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body.encode()})
