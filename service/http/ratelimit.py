"""The general request rate limit of ``/api/*``: one GCRA bucket (lua/rate_limit.lua) per
cart when the request names one (a valid cart token or user JWT), else per client address
(``service.http.forwarded``: behind trusted proxies, the address they forwarded). A cart is
the tight key (RATE_LIMIT_PER_MINUTE, RATE_LIMIT_BURST); an address may be shared by many
buyers (carrier-grade NAT, offices), so its bucket is a looser flood guard
(RATE_LIMIT_ADDRESS_PER_MINUTE, RATE_LIMIT_ADDRESS_BURST).

One EVALSHA per limited request; none when RATE_LIMIT_PER_MINUTE=0, for a trusted backend
(X-Service-Key) or the admin (X-Admin-Key), or outside ``/api/``. When Redis cannot answer,
requests go through unlimited for a second rather than failing on the limiter: the
request's own Redis call then answers 503 if Redis is really gone. Never limits health,
metrics or schema routes.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send
from redis.exceptions import RedisError

from service.auth import key_matches
from service.clock import now_ms
from service.errors import DomainError, RateLimited
from service.http.forwarded import client_addresses
from service.http.identity import resolve_cart
from service.http.problems import domain_error
from service.http.route_middleware import with_route_middleware
from service.http.security import send_response
from service.metrics import RATE_LIMITED
from service.redis.replies import RateLimitReply

if TYPE_CHECKING:
    from service.wiring import Services

log = logging.getLogger("ticket_cart.http")

LIMITED_PREFIX = "/api/"
FAIL_OPEN_SECONDS = 1.0  # after a limiter error, skip the limiter this long (no pile-up on a sick Redis)
IPV6_PREFIX = 64  # one IPv6 client usually owns a whole /64


class Subject(msgspec.Struct, frozen=True):
    scope: str  # "cart" or "client" (also the tc_rate_limited_total label)
    name: str


def client_subject(host: str) -> Subject:
    """The client address as one bucket: an IPv6 address counts by its /64."""
    if ":" in host:
        with contextlib.suppress(ValueError):
            host = str(ipaddress.IPv6Network(f"{host}/{IPV6_PREFIX}", strict=False).network_address) + "/64"
    return Subject("client", host)


def limit_headers(limit: int, reply: RateLimitReply) -> list[tuple[bytes, bytes]]:
    """``RateLimit-*`` (IETF draft: Limit is the bucket's size, Reset the seconds until it
    is full again) and, when refused, ``Retry-After``."""
    headers = [
        (b"ratelimit-limit", str(limit).encode()),
        (b"ratelimit-remaining", str(reply.remaining).encode()),
        (b"ratelimit-reset", str(math.ceil(reply.reset_ms / 1000)).encode()),
    ]
    if not reply.allowed:
        headers.append((b"retry-after", str(max(1, math.ceil(reply.retry_after_ms / 1000))).encode()))
    return headers


class RequestLimiter:
    """Decides, per request, which bucket it spends from (or none) and spends it."""

    def __init__(self, services: Services) -> None:
        self.s = services
        settings = services.settings
        self.per_minute = settings.rate_limit_per_minute
        # (per minute, burst) of each kind of bucket; an address's per minute may be 0 (off).
        self.limits = {
            "cart": (settings.rate_limit_per_minute, settings.rate_limit_burst),
            "client": (settings.rate_limit_address_per_minute, settings.rate_limit_address_burst),
        }
        self.addresses = client_addresses(settings.trusted_proxies)
        self.service_key = settings.trusted_service_key
        self.admin_key = settings.admin_api_key
        self.fail_open_until = 0.0

    def subject(self, scope: Scope) -> Subject | None:
        """The bucket this request spends from; None for an exempt caller."""
        for name, value in scope["headers"]:
            if name in (b"x-service-key", b"x-admin-key") and key_matches(
                self.service_key if name == b"x-service-key" else self.admin_key, value
            ):
                return None
        # As identity.resolve_cart decides; an unverifiable credential counts against the address.
        try:
            cart, _ = resolve_cart(scope, self.s.cart_tokens, self.s.user_tokens, create=False)
        except DomainError:
            cart = None
        if cart:
            return Subject("cart", cart.cart_id)
        return client_subject(self.addresses.client(scope)) if self.limits["client"][0] else None

    async def spend(self, subject: Subject) -> RateLimitReply | None:
        """The bucket's answer; None when the limiter cannot answer (fail open)."""
        if time.monotonic() < self.fail_open_until:
            return None
        key = self.s.keys.rate_limit(subject.scope, subject.name)
        per_minute, burst = self.limits[subject.scope]
        try:
            return await self.s.scripts.rate_limit(key, per_minute, burst, now_ms())
        except (RedisError, OSError, TimeoutError) as exc:
            self.fail_open_until = time.monotonic() + FAIL_OPEN_SECONDS
            log.warning("rate limiter unavailable, not limiting for %.0f s: %r", FAIL_OPEN_SECONDS, exc)
            return None


def with_rate_limit(handlers: Sequence[ControllerRouterHandler]) -> list[ControllerRouterHandler]:
    """``handlers``, each one of an ``/api/`` path with the limit as its outermost middleware
    (outside the fast lane, so the lane is limited too); the others, health, metrics, schema
    and pages, as they are (service/http/route_middleware.py: not even a pass-through layer)."""
    return with_route_middleware(
        handlers,
        limit_requests,
        where=lambda handler: any(path.startswith(LIMITED_PREFIX) for path in handler.paths),
        outermost=True,
    )


def limit_requests(app: ASGIApp, *, enabled: bool = True) -> ASGIApp:
    """The route middleware; with ``enabled`` False (RATE_LIMIT_PER_MINUTE=0, where it would
    let every request through) not installed at all, so no request pays for its layer."""
    if not enabled:
        return app
    limiter: RequestLimiter | None = None

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal limiter
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(LIMITED_PREFIX):
            await app(scope, receive, send)
            return
        if limiter is None:
            limiter = RequestLimiter(scope["app"].state.services)
        subject = limiter.subject(scope) if limiter.per_minute else None
        reply = await limiter.spend(subject) if subject is not None else None
        if subject is None or reply is None:
            await app(scope, receive, send)
            return
        headers = limit_headers(limiter.limits[subject.scope][1], reply)
        if not reply.allowed:
            RATE_LIMITED.labels(subject.scope).inc()
            await _refuse(scope, receive, send, reply, headers)
            return

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", [])
                # A route with a tighter limit of its own (promo attempts) sends its headers.
                named = {name.lower() for name, _ in own}
                message["headers"] = [*own, *(h for h in headers if h[0] not in named)]
            await send(message)

        await app(scope, receive, send_with_limits)

    return middleware


async def _refuse(
    scope: Scope, receive: Receive, send: Send, reply: RateLimitReply, headers: list[tuple[bytes, bytes]]
) -> None:
    """429 ``rate-limited``, the same problem document every other refusal is."""
    wait = headers[-1][1].decode()
    refusal = RateLimited(
        f"Too many requests; try again in {wait} s",
        retry_after_ms=reply.retry_after_ms,
        headers={name.decode(): value.decode() for name, value in headers},
    )
    await send_response(scope, receive, send, domain_error(Request(scope, receive), refusal))
