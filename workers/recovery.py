"""Stuck checkouts: parts left in checkout past their deadline (a crash between the
PostgreSQL transaction and the apply) are applied or moved back by the checkout domain's
``recover_stuck_checkouts``; this job calls it in batches until a batch comes back short
or the time budget is spent. Until that module exists the job reports itself skipped."""

from __future__ import annotations

import time
from typing import Any

from service.http.services import Services
from workers.summary import counts_of

RECOVERY_MODULE = "service.orders.recovery"
RECOVERY_BATCH = 500
TIME_BUDGET_SECONDS = 40.0


async def recover_checkouts(
    services: Services,
    *,
    now_ms: int | None = None,
    limit: int = RECOVERY_BATCH,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> dict[str, Any]:
    try:
        from service.orders.recovery import recover_stuck_checkouts
    except ModuleNotFoundError as exc:
        if exc.name not in ("service.orders", RECOVERY_MODULE):
            raise
        return {"skipped": f"{RECOVERY_MODULE} is not there yet"}
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    deadline = time.monotonic() + budget_seconds
    totals: dict[str, Any] = {"batches": 0}
    while True:
        batch = counts_of(await recover_stuck_checkouts(services, now_ms=now_ms, limit=limit))
        totals["batches"] += 1
        for name, value in batch.items():
            totals[name] = totals.get(name, 0) + value
        if batch.get("due", 0) < limit or time.monotonic() >= deadline:
            return totals
