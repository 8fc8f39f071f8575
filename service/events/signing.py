"""Standard Webhooks signatures (https://www.standardwebhooks.com): the headers a delivery
carries and the check a receiver runs. A few lines of HMAC, kept here rather than a
dependency; tests/events/test_signing.py holds them to the specification's test vector.

A secret is ``whsec_`` + base64 of its key bytes. The signature is
``v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">``; while a rotated
secret still signs, the header holds one signature per secret, space-separated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
KEY_BYTES = 32  # the specification asks for 24 to 64
TOLERANCE_SECONDS = 300  # how far off a receiver accepts webhook-timestamp (the spec's 5 minutes)


class InvalidSignature(Exception):
    """A delivery whose headers do not prove it came from us, now."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The key bytes of ``whsec_<base64>`` (the prefix is optional, as the libraries take it)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret may not be empty")
    return key


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of the body, as sent in ``webhook-signature``."""
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(secret_key(secret), signed, hashlib.sha256).digest()).decode()


def webhook_headers(secrets_: Iterable[str], webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one delivery attempt, signed with each secret given."""
    signatures = " ".join(sign(secret, webhook_id, timestamp, body) for secret in secrets_)
    if not signatures:
        raise ValueError("a delivery is signed with at least one secret")
    return {"webhook-id": webhook_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int) -> None:
    """What a receiver does: InvalidSignature unless one ``v1`` signature of the header is
    the body's under ``secret`` and the timestamp is within 5 minutes of ``now`` (seconds)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    webhook_id, stamp, header = (lowered.get(k) for k in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not (webhook_id and stamp and header):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a number of seconds") from None
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignature("webhook-timestamp is too old or too new")
    expected = sign(secret, webhook_id, timestamp, body)
    if not any(hmac.compare_digest(expected, given) for given in header.split(" ")):
        raise InvalidSignature("no signature matches")
