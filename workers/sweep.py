"""The minute sweep: releases expired open parts of every indexed event (sweep.lua).

Each event is swept in bounded batches, so one event with 100,000 expired carts never
blocks Redis for long; events take turns of a few batches each, so it cannot starve the
others either; and the whole run stops at a time budget (the next run carries on). Parts
in checkout are never swept (the recovery job resolves them against PostgreSQL).
"""

from __future__ import annotations

import time

import msgspec

from service.http.services import Services
from service.metrics import SWEEP_RELEASED
from workers.active_events import indexed_events

SWEEP_BATCH = 200  # parts one sweep.lua call releases at most (about 30 us each: ~6 ms)
BATCHES_PER_TURN = 20  # calls one event gets before the next event's turn
TIME_BUDGET_SECONDS = 40.0  # a run ends before the next minute's run is due


class SweepStats(msgspec.Struct):
    events: int = 0  # events in the index
    calls: int = 0  # sweep.lua calls
    released: int = 0  # parts released
    unfinished: int = 0  # events with expired parts left when the time budget ran out


async def sweep_expired_parts(
    services: Services,
    *,
    now_ms: int | None = None,
    batch: int = SWEEP_BATCH,
    batches_per_turn: int = BATCHES_PER_TURN,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> SweepStats:
    """Release every part that expired at or before ``now_ms`` (default: now)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    deadline = time.monotonic() + budget_seconds
    pending = await indexed_events(services)
    stats = SweepStats(events=len(pending))
    while pending:
        left: list[str] = []
        for i, event_id in enumerate(pending):
            if time.monotonic() >= deadline:
                stats.unfinished = len(left) + len(pending) - i
                return stats
            if not await _sweep_turn(services, event_id, now_ms, batch, batches_per_turn, stats):
                left.append(event_id)
        pending = left
    return stats


async def _sweep_turn(
    services: Services, event_id: str, now_ms: int, batch: int, batches: int, stats: SweepStats
) -> bool:
    """Up to ``batches`` sweep calls on one event; True once nothing due is left.

    A call that releases fewer than ``batch`` parts means the event is done: every call
    that continues has released a full batch, so the loop always makes progress.
    """
    for _ in range(batches):
        reply = await services.scripts.sweep(event_id=event_id, now_ms=now_ms, limit=batch)
        stats.calls += 1
        stats.released += reply.released
        SWEEP_RELEASED.inc(reply.released)
        if reply.due == 0 or reply.released < batch:
            return True
    return False
