"""Limits on promo attempts per cart and per client address, so codes cannot be guessed.

Each subject has its own GCRA bucket (``lua/rate_limit.lua``; the two keys live in different
slots, so they are two calls). An attempt is refused when either bucket is empty; the
headers describe the tighter one. The cart is the tight key (PROMO_ATTEMPTS_PER_MINUTE);
an address may be many buyers' (carrier-grade NAT), so its bucket is a looser flood guard
(PROMO_ATTEMPTS_ADDRESS_PER_MINUTE; 0: none). The cart's bucket is asked first and the
address's only when the cart's allowed the attempt: one cart hammering past its own limit
does not drain the bucket its address's other buyers share.
"""

from __future__ import annotations

import math

from service.errors import RateLimited
from service.keys import Keys
from service.redis.replies import RateLimitReply
from service.redis.scripts import Scripts


class AttemptLimit:
    """The outcome of one attempt against every bucket it spends from: (size, reply) each."""

    def __init__(self, buckets: list[tuple[int, RateLimitReply]]) -> None:
        refused = [(size, reply) for size, reply in buckets if not reply.allowed]
        # The bucket the headers describe: a refusing one, else the one with the fewest left.
        size, tightest = (
            max(refused, key=lambda b: b[1].retry_after_ms)
            if refused
            else min(buckets, key=lambda b: b[1].remaining, default=(0, None))
        )
        self.limit = size
        self.allowed = not refused
        self.remaining = tightest.remaining if tightest else 0
        self.retry_after_ms = tightest.retry_after_ms if tightest else 0
        self.reset_ms = tightest.reset_ms if tightest else 0

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
    def __init__(self, scripts: Scripts, keys: Keys, per_minute: int, per_address_per_minute: int) -> None:
        self.scripts = scripts
        self.keys = keys
        self.per_minute = per_minute
        self.per_address_per_minute = per_address_per_minute

    async def spend(self, cart_id: str | None, client: str | None, now_ms: int) -> AttemptLimit:
        """Count one attempt; RateLimited (429, with its headers) when a bucket is empty.

        ``client`` None: a trusted backend speaking for many buyers from one address, so
        only the cart's bucket counts.
        """
        if self.per_minute == 0:
            return AttemptLimit([])
        subjects = [("promo-cart", cart_id, self.per_minute)] if cart_id else []
        if client is not None and self.per_address_per_minute:
            subjects.append(("promo-client", client, self.per_address_per_minute))
        buckets = []
        for scope, subject, rate in subjects:
            reply = await self.scripts.rate_limit(self.keys.rate_limit(scope, subject), rate, rate, now_ms)
            buckets.append((rate, reply))
            if not reply.allowed:
                break
        outcome = AttemptLimit(buckets)
        if not outcome.allowed:
            raise RateLimited(
                f"Too many promo code attempts; try again in {outcome.headers()['Retry-After']} s",
                headers=outcome.headers(),
                retry_after_ms=outcome.retry_after_ms,
            )
        return outcome
