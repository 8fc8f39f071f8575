"""The API's log lines: one JSON object per line on stdout, with the request id.

Modules log through the standard library (``logging.getLogger("ticket_cart....")``); this
formatter renders them, adding the ``X-Request-ID`` of the request being served (set by
``service.http.observability``). Secrets and customers' e-mail addresses are never passed to
a logger (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
_HANDLER_NAME = "ticket-cart-json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_api_logging(level: str = "INFO") -> None:
    """Idempotent: one JSON handler on the ``ticket_cart`` logger tree."""
    logger = logging.getLogger("ticket_cart")
    logger.setLevel(level)
    if any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
