"""Runs one job: times it, updates the job metrics, and writes its one summary line.

A job body returns its counts (a msgspec Struct, a dataclass or a dict); they become the
fields of the line. A failure is logged (with the traceback), counted, and raised again so
arq records it too. A job run every few seconds (deliver_webhooks) says when a run did
nothing (``idle``): that run's line is written at DEBUG, so quiet hours fill no log.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from service.metrics import (
    WORKER_JOB_DURATION,
    WORKER_JOB_FAILURES,
    WORKER_JOB_LAST_SUCCESS,
)
from workers.logs import worker_log


def counts_of(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, msgspec.Struct):
        return msgspec.structs.asdict(result)
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    if isinstance(result, dict):
        return dict(result)
    return {"result": result}


async def run_job(
    job: str, body: Callable[[], Awaitable[Any]], *, idle: Callable[[Any], bool] | None = None
) -> dict[str, Any]:
    """Run ``body`` as the job ``job``; its counts, as logged, are returned. ``idle(result)``
    true: the summary line is written at DEBUG instead of INFO."""
    started = time.monotonic()
    try:
        result = await body()
    except Exception as exc:
        duration = time.monotonic() - started
        WORKER_JOB_DURATION.labels(job=job).observe(duration)
        WORKER_JOB_FAILURES.labels(job=job).inc()
        worker_log().error(
            "job failed",
            job=job,
            ok=False,
            duration_ms=round(duration * 1000, 1),
            error=f"{type(exc).__name__}: {exc}",
            exc_info=True,
        )
        raise
    duration = time.monotonic() - started
    WORKER_JOB_DURATION.labels(job=job).observe(duration)
    WORKER_JOB_LAST_SUCCESS.labels(job=job).set_to_current_time()
    counts = counts_of(result)
    write = worker_log().debug if idle is not None and idle(result) else worker_log().info
    write("job done", job=job, ok=True, duration_ms=round(duration * 1000, 1), **counts)
    return counts
