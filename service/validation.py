"""Constraints shared by every request body and parameter: checked at the edge, so bad
data is a 422 ``validation-error`` and never reaches Redis or PostgreSQL.

- ``Text``: free text without NUL (U+0000), which PostgreSQL refuses in ``text``. A pattern,
  so the OpenAPI document shows it; narrow it further with another ``Meta``
  (``Annotated[Text, Meta(max_length=200)]``).
- ``Instant``: a datetime with a time zone, from ``EARLIEST`` (inclusive) to ``LATEST``
  (exclusive): far enough from PostgreSQL's and Python's limits that no time zone
  conversion overflows. msgspec has no bounds for datetimes, so a body holding one derives
  from ``RequestBody``, whose ``__post_init__`` checks every datetime field.
  ``tests/hardening/test_bad_data.py`` holds every body and query parameter of the app to
  these rules.
- ``Currency``: an ISO 4217 code (three upper-case letters).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import msgspec
from msgspec import Meta

NO_NUL_PATTERN = r"^[^\x00]*$"
NO_NUL_MESSAGE = "must not contain the NUL character (U+0000)"
Text = Annotated[str, Meta(pattern=NO_NUL_PATTERN, description="Any text but NUL (U+0000)")]

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
INSTANT_RULE = (
    f"must carry a time zone and lie from {EARLIEST:%Y-%m-%dT%H:%M:%SZ} (inclusive) "
    f"to {LATEST:%Y-%m-%dT%H:%M:%SZ} (exclusive)"
)
Instant = Annotated[dt.datetime, Meta(description=f"RFC 3339 date-time; {INSTANT_RULE}")]

Currency = Annotated[str, Meta(pattern="^[A-Z]{3}$", description="ISO 4217 code, e.g. VND")]


def instant_problem(value: dt.datetime) -> str | None:
    """Why ``value`` is not an acceptable instant, or None when it is."""
    if value.utcoffset() is None:
        return "must carry a time zone (e.g. 2030-01-01T00:00:00Z)"
    if not EARLIEST <= value < LATEST:  # compared without converting: no overflow
        return INSTANT_RULE
    return None


class RequestBody(msgspec.Struct, forbid_unknown_fields=True):
    """Base of request bodies: unknown fields refused, every datetime field checked as an
    ``Instant`` while decoding (and on construction). A ValueError here becomes msgspec's
    ValidationError; the trailing ``- at `$.field``` is msgspec's own way of naming the
    field, which Litestar reads into the problem's ``field``."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, dt.datetime) and (problem := instant_problem(value)) is not None:
                raise ValueError(f"{problem} - at `$.{name}`")
