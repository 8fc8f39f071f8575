"""The page cursors of the lists ordered by (time, id): orders, payments, webhook deliveries.

A cursor is opaque to callers (``service.http.params.PageCursor`` says its pattern) and
taken back only as this module wrote it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid

from service.errors import ValidationFailed
from service.validation import instant_problem


def encode_cursor(at: dt.datetime, row_id: uuid.UUID | str) -> str:
    """The cursor of a list row ordered by (time, id): both, base64url without padding."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """The (time, id) a cursor names; ValidationFailed for anything this API did not give
    out: it must decode, name an instant in range and a UUID, and encode back to itself (so
    no lenient parse lets a crafted value through to PostgreSQL)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when_text, _, id_text = raw.partition("|")
        when, row_id = dt.datetime.fromisoformat(when_text), uuid.UUID(id_text)
        if instant_problem(when) or encode_cursor(when, row_id) != cursor:
            raise ValueError("not a cursor this API encodes")
        return when, row_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationFailed("cursor is not one this API gave out", field="cursor") from None
