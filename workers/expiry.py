"""Unpaid orders past their payment due time are expired by the order lifecycle
(``OrderLifecycle.expire_unpaid``: seats and promo uses given back, each order alone); this
job goes through the due orders page by page until a page comes back short or the time
budget is spent."""

from __future__ import annotations

import datetime as dt
import time

import msgspec

from service.clock import utcnow
from service.metrics import ORDERS_EXPIRED
from service.wiring import Services

EXPIRY_BATCH = 500
TIME_BUDGET_SECONDS = 40.0


class ExpiryStats(msgspec.Struct):
    expired: int = 0
    batches: int = 0
    failed: int = 0  # orders that could not be expired (logged with their ids); tried next run


async def expire_orders(
    services: Services,
    *,
    now: dt.datetime | None = None,
    limit: int = EXPIRY_BATCH,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> ExpiryStats:
    now = now or utcnow()
    deadline = time.monotonic() + budget_seconds
    stats = ExpiryStats()
    after = None
    while True:
        batch = await services.lifecycle.expire_unpaid(now=now, limit=limit, after=after)
        stats.expired += batch.expired
        stats.failed += len(batch.skipped)
        stats.batches += 1
        ORDERS_EXPIRED.inc(batch.expired)
        after = batch.last
        if batch.picked < limit or time.monotonic() >= deadline:
            return stats
