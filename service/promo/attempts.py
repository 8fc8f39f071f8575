"""Limits on promo attempts per cart and per client address, so codes cannot be guessed.

Each subject has its own GCRA bucket (``lua/rate_limit.lua``; the two keys live in different
slots, so they are two calls, sent together). An attempt is refused when either bucket is
empty; the headers describe the tighter one.
"""

from __future__ import annotations

import asyncio
import math

from service.errors import RateLimited
from service.keys import Keys
from service.redis.replies import RateLimitReply
from service.redis.scripts import Scripts


class AttemptLimit:
    """The outcome of one attempt against every bucket it spends from."""

    def __init__(self, limit: int, replies: list[RateLimitReply]) -> None:
        self.limit = limit
        self.allowed = all(reply.allowed for reply in replies)
        self.remaining = min((reply.remaining for reply in replies), default=limit)
        self.retry_after_ms = max((reply.retry_after_ms for reply in replies), default=0)
        self.reset_ms = max((reply.reset_ms for reply in replies), default=0)

    def headers(self) -> dict[str, str]:
        """``RateLimit-*`` (IETF draft: seconds until full) and, when refused, ``Retry-After``."""
        if self.limit == 0:  # no limit configured
            return {}
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_ms / 1000)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.retry_after_ms / 1000)))
        return headers


class PromoAttempts:
    def __init__(self, scripts: Scripts, keys: Keys, per_minute: int) -> None:
        self.scripts = scripts
        self.keys = keys
        self.per_minute = per_minute

    async def spend(self, cart_id: str | None, client: str | None, now_ms: int) -> AttemptLimit:
        """Count one attempt; RateLimited (429, with its headers) when a bucket is empty.

        ``client`` None: a trusted backend speaking for many buyers from one address, so
        only the cart's bucket counts.
        """
        subjects = [("promo-client", client)] if client is not None else []
        subjects += [("promo-cart", cart_id)] if cart_id else []
        if self.per_minute == 0 or not subjects:
            return AttemptLimit(0, [])
        replies = await asyncio.gather(*(
            self.scripts.rate_limit(self.keys.rate_limit(scope, subject), self.per_minute, self.per_minute, now_ms)
            for scope, subject in subjects
        ))
        outcome = AttemptLimit(self.per_minute, list(replies))
        if not outcome.allowed:
            raise RateLimited(
                f"Too many promo code attempts; try again in {outcome.headers()['Retry-After']} s",
                headers=outcome.headers(),
                retry_after_ms=outcome.retry_after_ms,
            )
        return outcome
