"""The minute sweep: releases expired open parts of every indexed event (sweep.lua), and
retires the events that are finished (no parts left, every sale over).

Each event is swept in bounded batches, so one event with 100,000 expired carts never
blocks Redis for long; events take turns of a few batches each, so it cannot starve the
others either; and the whole run stops at a time budget. A run that stops there notes
the event whose turn it did not reach (``Keys.sweep_start``), and the next run starts
with it: the events left over are never the same tail every minute. Parts in checkout
are never swept (the recovery job resolves them against PostgreSQL).

An event whose last call left no part is offered to retire_event.lua, which deletes its
state if every tier's sale is over (workers/active_events.py).
"""

from __future__ import annotations

import bisect
import time

import msgspec

from service import clock
from service.metrics import (
    EVENTS_RETIRED,
    SWEEP_RELEASED,
    SWEEP_UNFINISHED_EVENTS,
    SWEEP_UNFINISHED_RUNS,
)
from service.wiring import Services
from workers.active_events import indexed_events, retire_if_finished

SWEEP_BATCH = 200  # parts one sweep.lua call releases at most (about 30 us each: ~6 ms)
BATCHES_PER_TURN = 20  # calls one event gets before the next event's turn
TIME_BUDGET_SECONDS = 40.0  # a run ends before the next minute's run is due


class SweepStats(msgspec.Struct):
    events: int = 0  # events in the index
    calls: int = 0  # sweep.lua calls
    released: int = 0  # parts released
    unfinished: int = 0  # events with expired parts left when the time budget ran out
    retired: int = 0  # finished events whose Redis state was deleted


async def sweep_expired_parts(
    services: Services,
    *,
    now_ms: int | None = None,
    batch: int = SWEEP_BATCH,
    batches_per_turn: int = BATCHES_PER_TURN,
    budget_seconds: float = TIME_BUDGET_SECONDS,
) -> SweepStats:
    """Release every part that expired at or before ``now_ms`` (default: now)."""
    now_ms = clock.now_ms() if now_ms is None else now_ms
    deadline = time.monotonic() + budget_seconds
    pending = await _in_turn_order(services)
    stats = SweepStats(events=len(pending))
    while pending:
        left: list[str] = []
        for i, event_id in enumerate(pending):
            if time.monotonic() >= deadline:
                await _stop_unfinished(services, event_id, len(left) + len(pending) - i, stats)
                return stats
            done, parts = await _sweep_turn(services, event_id, now_ms, batch, batches_per_turn, stats)
            if not done:
                left.append(event_id)
            elif parts == 0 and await retire_if_finished(services, event_id, now_ms):
                stats.retired += 1
                EVENTS_RETIRED.inc()
        pending = left
    return stats


async def _in_turn_order(services: Services) -> list[str]:
    """The indexed events, sorted, starting with the one the last unfinished run did not
    reach (or the next one after it, if that one has left the index)."""
    events = await indexed_events(services)
    start = await services.redis.get(services.keys.sweep_start())
    if not start:
        return events
    i = bisect.bisect_left(events, start.decode() if isinstance(start, bytes) else start)
    return events[i:] + events[:i]


async def _stop_unfinished(services: Services, next_event: str, left: int, stats: SweepStats) -> None:
    stats.unfinished = left
    SWEEP_UNFINISHED_RUNS.inc()
    SWEEP_UNFINISHED_EVENTS.inc(left)
    await services.redis.set(services.keys.sweep_start(), next_event)


async def _sweep_turn(
    services: Services, event_id: str, now_ms: int, batch: int, batches: int, stats: SweepStats
) -> tuple[bool, int]:
    """Up to ``batches`` sweep calls on one event: (True once nothing due is left, the parts
    the event has after the last call; -1 when unknown).

    A call that releases fewer than ``batch`` parts means the event is done: every call
    that continues has released a full batch, so the loop always makes progress.
    """
    for _ in range(batches):
        reply = await services.scripts.sweep(event_id=event_id, now_ms=now_ms, limit=batch)
        stats.calls += 1
        stats.released += reply.released
        SWEEP_RELEASED.inc(reply.released)
        if reply.due == 0 or reply.released < batch:
            return True, reply.parts
    return False, -1
