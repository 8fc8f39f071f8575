"""The worker's log lines: ``service.logs.configure_logging`` sets them up, as for the API.

Every job writes one summary line per run (see ``workers.summary``); the reconciler adds
one line per corrected counter. They are structlog calls with fields, written as JSON
lines by the same handler as the domain code's standard-library loggers.
"""

from __future__ import annotations

import structlog


def worker_log() -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("ticket_cart.worker")
    return logger
