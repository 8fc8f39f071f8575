"""Is a delivery SePay's? The check of the mode SEPAY_AUTH names (docs/payments.md,
"Authentication"), before anything is read or stored.

- ``apikey``: ``Authorization: Apikey <SEPAY_API_KEY>``.
- ``hmac``: ``X-SePay-Signature: sha256=<hex>``, the HMAC-SHA256 under SEPAY_HMAC_SECRET of
  ``"<X-SePay-Timestamp>.<raw body>"``, the timestamp (Unix seconds) at most 5 minutes
  from now: a body replayed later, or under another timestamp, is refused.

Comparisons are constant-time. No I/O; the caller raises the refusal.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal

MAX_SKEW_SECONDS = 300
_APIKEY_SCHEME = "apikey"
_SIGNATURE_PREFIX = "sha256="


def apikey_problem(authorization: str | None, key: str) -> str | None:
    """Why ``Authorization`` does not carry ``key`` (None: it does)."""
    if not authorization:
        return "Authorization: Apikey <key> is missing"
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != _APIKEY_SCHEME or not hmac.compare_digest(given.strip().encode(), key.encode()):
        return "the API key is not the one configured"
    return None


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-SePay-Signature value of a body sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return _SIGNATURE_PREFIX + digest


def hmac_problem(headers: Mapping[str, str], body: bytes, secret: str, now: float) -> str | None:
    """Why the delivery's signature does not hold (None: it does)."""
    given, timestamp = headers.get("x-sepay-signature"), headers.get("x-sepay-timestamp")
    if not given or not timestamp:
        return "X-SePay-Signature and X-SePay-Timestamp are both needed"
    timestamp = timestamp.strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return "X-SePay-Timestamp is not a Unix time in seconds"
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return "X-SePay-Timestamp is more than 5 minutes from now"
    given = given.strip().lower()
    if not given.startswith(_SIGNATURE_PREFIX):
        given = _SIGNATURE_PREFIX + given  # the bare hex digest is taken too
    if not hmac.compare_digest(given.encode(), signature(secret, timestamp, body).encode()):
        return "the signature does not match the body and timestamp"
    return None


class SePayAuth:
    """The check SEPAY_AUTH configures; ``mode`` off: SePay is not enabled.

    A secret setting may name several, comma-separated: a delivery passes with any of them,
    so a key is rotated without refusing SePay's deliveries meanwhile (add the new one, change
    it in SePay's dashboard, then drop the old one)."""

    def __init__(self, mode: Literal["off", "apikey", "hmac"], api_key: str | None, hmac_secret: str | None) -> None:
        self.mode = mode
        self._api_keys = _each(api_key)
        self._hmac_secrets = _each(hmac_secret)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def problem(self, headers: Mapping[str, str], body: bytes, now: float) -> str | None:
        """Why the delivery is not SePay's (None: it is). Settings guarantee the mode's secret."""
        if self.mode == "apikey":
            problems = [apikey_problem(headers.get("authorization"), key) for key in self._api_keys]
        elif self.mode == "hmac":
            problems = [hmac_problem(headers, body, secret, now) for secret in self._hmac_secrets]
        else:
            return "SePay notifications are off"
        return None if None in problems else (problems[0] if problems else "no secret is configured")


def _each(secrets: str | None) -> list[str]:
    return [s.strip() for s in (secrets or "").split(",") if s.strip()]
