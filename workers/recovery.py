"""Stuck checkouts: parts left in checkout past their deadline (a crash between the
PostgreSQL transaction and the apply, or a commit whose outcome nobody heard) are settled
by the checkout domain's ``CheckoutRecovery``; this job calls it in batches until a batch
comes back short or the time budget is spent."""

from __future__ import annotations

import time
from typing import Any

from service import clock
from service.wiring import Services
from workers.summary import counts_of

RECOVERY_BATCH = 500
TIME_BUDGET_SECONDS = 40.0


async def recover_checkouts(
    services: Services,
    *,
    now_ms: int | None = None,
    limit: int = RECOVERY_BATCH,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> dict[str, Any]:
    now_ms = clock.now_ms() if now_ms is None else now_ms
    deadline = time.monotonic() + budget_seconds
    totals: dict[str, Any] = {"batches": 0}
    while True:
        batch = counts_of(await services.recovery.recover(now_ms=now_ms, limit=limit))
        totals["batches"] += 1
        for name, value in batch.items():
            totals[name] = totals.get(name, 0) + value
        if batch.get("due", 0) < limit or time.monotonic() >= deadline:
            return totals
