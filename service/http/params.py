"""Path and header parameters checked once at the edge."""

from __future__ import annotations

import os
import uuid

from service.errors import ValidationFailed


def uuid_param(value: str, name: str) -> str:
    """The canonical text of a UUID path parameter; 422 for anything else."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationFailed(f"{name} must be a UUID", field=name) from None


def request_id_for_retry(key: str | None) -> str:
    """A client's Idempotency-Key makes a retried add a no-op; without one, every call is new.

    Never "" for a call without a key, though reserve.lua would take it: the random id also
    makes our own resend of a call harmless (Scripts.reserve sends its pipeline again after
    a NOSCRIPT, and another process may have reloaded the scripts between its commands, so
    the reserve may already have run once)."""
    if key:
        if len(key) > 200:
            raise ValidationFailed("Idempotency-Key is at most 200 characters", field="Idempotency-Key")
        return "k:" + key
    return os.urandom(16).hex()  # as random as a uuid4, without building one
