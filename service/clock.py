"""The one clock of the service: wall time, as milliseconds (Redis scores and the scripts'
``now_ms``) or as an aware UTC datetime (PostgreSQL). Code that needs time takes it from
here, or as a parameter, so tests can move it."""

from __future__ import annotations

import datetime as dt
import time


def now_ms() -> int:
    return int(time.time() * 1000)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
