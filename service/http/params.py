"""Path and header parameters checked once at the edge."""

from __future__ import annotations

import os
import re
import uuid
from typing import Annotated

from litestar.params import QueryParameter

from service.errors import ValidationFailed

# A list's page cursor, as every list route takes it (orders, payments, webhook deliveries):
# the next_cursor of the previous page, base64url without padding. The document says the
# pattern; a cursor this API did not give out is refused 422 by the list that decodes it
# (service/cursors.py).
CURSOR_PATTERN = "^[A-Za-z0-9_-]+$"
PageCursor = Annotated[
    str | None,
    QueryParameter(
        max_length=200,
        pattern=CURSOR_PATTERN,
        description="next_cursor of the previous page (opaque: only one this API gave out is taken)",
    ),
]


def uuid_param(value: str, name: str) -> str:
    """The canonical text of a UUID path parameter; 422 for anything else."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationFailed(f"{name} must be a UUID", field=name) from None


MAX_IDEMPOTENCY_KEY = 200
# Visible ASCII, spaces inside: the OpenAPI document says this pattern (service.http.openapi),
# so a client generated from it never sends a key refused here, and every key it refuses is.
IDEMPOTENCY_KEY_PATTERN = "^[!-~]([ -~]*[!-~])?$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN[1:-1])


def idempotency_key(raw: str | None) -> str | None:
    """The one rule for every Idempotency-Key (a cart add, a checkout): absent is None; else
    1 to 200 visible ASCII characters (spaces inside allowed; spaces and tabs around, which
    HTTP drops anyway, ignored), or 422."""
    if raw is None:
        return None
    key = raw.strip(" \t")
    if len(key) > MAX_IDEMPOTENCY_KEY or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationFailed(
            f"Idempotency-Key is 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (spaces inside allowed)",
            field="Idempotency-Key",
        )
    return key


def request_id_for_retry(raw_key: str | None) -> str:
    """A client's Idempotency-Key makes a retried add a no-op; without one, every call is new.

    Never "" for a call without a key, though reserve.lua would take it: the random id also
    makes our own resend of a call harmless (a pipeline resent after a NOSCRIPT, where
    another process may have reloaded the scripts between its commands)."""
    key = idempotency_key(raw_key)
    if key:
        return "k:" + key
    return os.urandom(16).hex()  # as random as a uuid4, without building one
