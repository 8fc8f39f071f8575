"""The worker's half of the order events: fan new events out into deliveries, then send the
due deliveries, signed (signing.py), and record each outcome. Never called by the API.

At least once: a delivery is claimed (leased) before it is sent and settled after, so a
worker dying between the two sends it again once the lease ends; receivers dedupe on
``webhook-id`` (the event's id). In order per order and endpoint (sql.CLAIM_DUE). A dead
receiver costs one short timeout per attempt and nothing else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
import uuid
from collections import Counter
from typing import Literal

import asyncpg
import httpx
import msgspec

from service.events.payloads import DATA, Envelope, EventKind
from service.events.signing import webhook_headers
from service.events.sql import (
    ABANDONED,
    CLAIM_DUE,
    DELIVERED,
    FAN_OUT,
    GONE,
    OLDEST_PENDING_SECONDS,
    RETRY_OR_FAIL,
)

log = logging.getLogger("ticket_cart.events")

Outcome = Literal["delivered", "retry", "failed", "gone"]
FAN_OUT_BATCH = 500
SEND_BATCH = 50
LEASE_MARGIN_SECONDS = 30  # a claim outlives its send's timeout by this much
USER_AGENT = "ticket-cart-webhooks/1"
_ERROR_LENGTH = 300


class RetryPolicy(msgspec.Struct, frozen=True):
    """Exponential backoff with jitter, for ``retry_for_seconds`` after a delivery became
    pending: attempt n waits base * 2**(n-1), capped at max_delay, times 0.8 to 1.2."""

    base_seconds: float = 10
    max_delay_seconds: float = 6 * 3600
    retry_for_seconds: float = 3 * 86400

    def delay(self, attempts: int, draw: float | None = None) -> float:
        """The wait after the ``attempts``-th failed attempt; ``draw`` in [0, 1) fixes the jitter."""
        exact = min(self.max_delay_seconds, self.base_seconds * 2.0 ** min(attempts - 1, 40))
        return exact * (0.8 + 0.4 * (random.random() if draw is None else draw))


class Claimed(msgspec.Struct, frozen=True):
    delivery_id: uuid.UUID
    attempts: int
    endpoint_id: uuid.UUID
    url: str
    active: bool
    secrets: tuple[str, ...]  # the current secret, and the previous one while it still signs
    event_id: uuid.UUID
    kind: EventKind
    body: bytes | None  # None: the stored event does not decode to its kind's shape (never sent)


def event_body(kind: str, payload: str, created_at: dt.datetime) -> bytes:
    """The JSON every delivery of the event sends: ``{"type", "timestamp", "data"}``, data in
    its kind's shape (payloads.DATA), checked on the way."""
    data = msgspec.json.decode(payload, type=DATA[kind])
    return msgspec.json.encode(Envelope(type=kind, timestamp=created_at, data=msgspec.Raw(msgspec.json.encode(data))))  # type: ignore[arg-type]


def _claimed(row: asyncpg.Record) -> Claimed:
    try:
        body: bytes | None = event_body(row["kind"], row["payload"], row["created_at"])
    except (msgspec.ValidationError, msgspec.DecodeError, KeyError):
        log.error("event %s does not decode as %s; its delivery %s fails", row["event_id"], row["kind"], row["id"])
        body = None
    return Claimed(
        delivery_id=row["id"],
        attempts=row["attempts"],
        endpoint_id=row["endpoint_id"],
        url=row["url"],
        active=row["active"],
        secrets=tuple(s for s in (row["secret"], row["previous_secret"]) if s),
        event_id=row["event_id"],
        kind=row["kind"],
        body=body,
    )


class DeliveryRun(msgspec.Struct):
    """What one run of the job did."""

    fanned_out: int = 0
    delivered: int = 0
    retry: int = 0
    failed: int = 0
    gone: int = 0
    oldest_pending_seconds: float = 0.0
    kinds: dict[str, int] = msgspec.field(default_factory=dict)  # events fanned out, by kind


class WebhookSender:
    """Fans out and sends, on the PostgreSQL pool and one HTTP client (made here, closed by
    ``aclose``). ``transport`` replaces the network in tests."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        timeout_seconds: float,
        policy: RetryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.pool = pool
        self.timeout = timeout_seconds
        self.policy = policy
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def fan_out(self, limit: int = FAN_OUT_BATCH) -> Counter[str]:
        """One page of new events made into deliveries; their kinds."""
        async with self.pool.acquire() as conn, conn.transaction():
            return Counter(r["kind"] for r in await conn.fetch(FAN_OUT, limit))

    async def claim(self, limit: int = SEND_BATCH) -> list[Claimed]:
        rows = await self.pool.fetch(CLAIM_DUE, limit, float(self.timeout + LEASE_MARGIN_SECONDS))
        return [_claimed(r) for r in rows]

    async def send(self, claimed: Claimed) -> Outcome:
        """One attempt, and its outcome recorded."""
        if not claimed.active or claimed.body is None:
            why = "endpoint deactivated" if not claimed.active else "the event does not decode to its kind's shape"
            await self.pool.execute(ABANDONED, claimed.delivery_id, claimed.attempts, why)
            return "failed"
        status: int | None = None
        error: str | None = None
        headers = {
            "content-type": "application/json",
            **webhook_headers(claimed.secrets, str(claimed.event_id), int(time.time()), claimed.body),
        }
        try:
            async with asyncio.timeout(self.timeout):  # the whole exchange, not each read
                async with self.http.stream("POST", claimed.url, content=claimed.body, headers=headers) as response:
                    status = response.status_code  # the body is never read
        except Exception as exc:  # whatever the receiver or its URL does, this delivery only is retried
            error = f"{type(exc).__name__}: {exc}"[:_ERROR_LENGTH]
        if status is not None and 200 <= status < 300:
            await self.pool.execute(DELIVERED, claimed.delivery_id, claimed.attempts, status)
            return "delivered"
        if status == 410:
            await self.pool.fetchval(GONE, claimed.delivery_id, claimed.attempts)
            log.warning("webhook endpoint %s answered 410 Gone: deactivated", claimed.endpoint_id)
            return "gone"
        settled = await self.pool.fetchval(
            RETRY_OR_FAIL,
            claimed.delivery_id,
            claimed.attempts,
            self.policy.delay(claimed.attempts),
            status,
            error or f"HTTP {status}",
            float(self.policy.retry_for_seconds),
        )
        if settled == "failed":
            log.warning("webhook delivery %s failed for good after %d attempts", claimed.delivery_id, claimed.attempts)
            return "failed"
        return "retry"

    async def oldest_pending_seconds(self) -> float:
        age: float = await self.pool.fetchval(OLDEST_PENDING_SECONDS)
        return age

    async def run(self, *, budget_seconds: float = 4.0) -> DeliveryRun:
        """Fan out every new event, then send due deliveries batch by batch until none is
        due or ``budget_seconds`` have passed (a batch started always ends: within the timeout)."""
        deadline = time.monotonic() + budget_seconds
        result = DeliveryRun()
        kinds: Counter[str] = Counter()
        while True:
            page = await self.fan_out()
            kinds.update(page)
            if page.total() < FAN_OUT_BATCH or time.monotonic() >= deadline:
                break
        result.fanned_out, result.kinds = kinds.total(), dict(kinds)
        while time.monotonic() < deadline:
            batch = await self.claim()
            if not batch:
                break
            async with asyncio.TaskGroup() as group:
                sends = [group.create_task(self.send(c)) for c in batch]
            for send in sends:
                outcome = send.result()
                setattr(result, outcome, getattr(result, outcome) + 1)
        result.oldest_pending_seconds = round(await self.oldest_pending_seconds(), 1)
        return result
