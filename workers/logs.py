"""The worker's log lines: structlog, one JSON object per line on stdout.

Every job writes one summary line per run (see ``workers.summary``); the reconciler adds
one line per corrected counter. The message is under ``msg`` so that ``event`` stays free
for the domain's events.
"""

from __future__ import annotations

import json
import logging

import structlog


def configure_logging(level: str = "INFO") -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("msg"),
            structlog.processors.JSONRenderer(serializer=lambda obj, **kw: json.dumps(obj, default=str)),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper(), logging.INFO)),
        # No file given: each line goes to the sys.stdout of the moment (tests capture it).
        logger_factory=structlog.PrintLoggerFactory(),
        # Not cached: tests capture the lines (structlog.testing.capture_logs) after start-up.
        cache_logger_on_first_use=False,
    )


def worker_log() -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger("ticket_cart.worker")
