"""Unpaid orders past their payment due time are expired by the order lifecycle's
``expire_unpaid_orders`` (seats and promo uses given back, new sold pairs installed);
this job calls it in batches until a batch comes back short or the time budget is spent.
Until that module exists the job reports itself skipped."""

from __future__ import annotations

import datetime as dt
import time

import msgspec

from service.http.services import Services
from service.metrics import ORDERS_EXPIRED

LIFECYCLE_MODULE = "service.orders.lifecycle"
EXPIRY_BATCH = 500
TIME_BUDGET_SECONDS = 40.0


class ExpiryStats(msgspec.Struct):
    expired: int = 0
    batches: int = 0
    failed: int = 0  # orders that could not be expired (logged with their ids); tried next run
    skipped: str = ""


async def expire_orders(
    services: Services,
    *,
    now: dt.datetime | None = None,
    limit: int = EXPIRY_BATCH,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> ExpiryStats:
    try:
        from service.orders.lifecycle import expire_unpaid_orders
    except ModuleNotFoundError as exc:
        if exc.name not in ("service.orders", LIFECYCLE_MODULE):
            raise
        return ExpiryStats(skipped=f"{LIFECYCLE_MODULE} is not there yet")
    now = now or dt.datetime.now(dt.UTC)
    deadline = time.monotonic() + budget_seconds
    stats = ExpiryStats()
    after = None
    while True:
        batch = await expire_unpaid_orders(services, now=now, limit=limit, after=after)
        stats.expired += batch.expired
        stats.failed += len(batch.skipped)
        stats.batches += 1
        ORDERS_EXPIRED.inc(batch.expired)
        after = batch.last
        if batch.picked < limit or time.monotonic() >= deadline:
            return stats
