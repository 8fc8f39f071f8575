"""The log lines of the API and the worker: one set-up for both processes
(``configure_logging``), one JSON object per line on stdout.

Modules log through the standard library (``logging.getLogger("ticket_cart....")``); the
worker's jobs log through structlog with fields (``workers.logs.worker_log``), which this
set-up hands to the same handler. So a line of shared domain code (an order expired, a
checkout recovered) reads the same in the API's and in the worker's logs. Each line has
``ts``, ``level``, ``logger`` and ``msg``, then the fields a structlog call gave, the
``X-Request-ID`` of the request being served (set by ``service.http.edge``), and
``exc`` with the traceback. Secrets and customers' e-mail addresses are never passed to a
logger (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_HANDLER_NAME = "ticket-cart-json"
_BASE_KEYS = ("ts", "level", "logger", "msg")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            line.setdefault(key, value)
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """Writes to the ``sys.stdout`` of the moment (tests capture it after start-up)."""

    @property
    def stream(self) -> TextIO:  # StreamHandler's attribute, read at each write
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ sets it: ignored
        pass


def _to_standard_library(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """structlog's last step: its event as a standard-library call, the fields kept apart."""
    message = event.pop("event", "")
    exc_info = event.pop("exc_info", None)
    return (message,), {"extra": {"fields": dict(event)}, "exc_info": exc_info}


def configure_logging(level: str = "INFO") -> None:
    """The logging of the API's and the worker's processes alike; idempotent: one JSON
    handler on the ``ticket_cart`` logger tree, and structlog writing through it."""
    number = logging.getLevelName(level.upper())
    number = number if isinstance(number, int) else logging.INFO
    logger = logging.getLogger("ticket_cart")
    logger.setLevel(number)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = _StdoutHandler()
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Our lines are written here once: not again by the root logger's handler (Litestar
    # installs one in the API, in its own plain format).
    logger.propagate = False
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, _to_standard_library],
        wrapper_class=structlog.make_filtering_bound_logger(number),
        logger_factory=structlog.stdlib.LoggerFactory(),
        # Not cached: tests capture the lines (structlog.testing.capture_logs) after start-up.
        cache_logger_on_first_use=False,
    )
