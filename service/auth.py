"""Who is calling: signed guest cart tokens, user bearer JWTs, the admin key.

A guest cart is named by ``v1.<cart uuid>.<hmac>``; the first CART_TOKEN_SECRET signs and
every one verifies, so keys can be rotated without logging buyers out. A signed-in user's
cart id is derived from the user id, so it follows them across devices.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import uuid
from collections import OrderedDict

import jwt
import msgspec

from service.errors import InvalidCartToken, InvalidUserToken, Unauthorized

_USER_CART_NAMESPACE = uuid.UUID("6f0e5c1a-7c1b-4e57-9d7a-2b1f4a9c0e11")
_TOKEN_VERSION = "v1"
JWT_LEEWAY_SECONDS = 30
# Tokens this process verified or issued, and their cart ids: a buyer's next calls skip
# the HMAC and the UUID parse (about 3 us of an add). Only valid tokens enter, so a forged
# one is always checked in full; the oldest entry goes first when full.
VERIFIED_TOKENS = 20_000
# The variant digit of a random UUID: RFC 4122's 10xx bits over the random ones.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


class CartRef(msgspec.Struct, frozen=True):
    """The cart a caller names: a guest's (its id from a verified token), or a signed-in
    user's (``user_cart_id`` of the user, the same on every device)."""

    cart_id: str
    user_id: str | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def random_uuid() -> str:
    """``str(uuid.uuid4())`` (122 random bits, version 4, RFC 4122 variant), without the
    UUID object: a third of its cost."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


class CartTokens:
    def __init__(self, secrets: tuple[str, ...]) -> None:
        if not secrets:
            raise ValueError("at least one cart token secret is needed")
        self._keys = [s.encode() for s in secrets]
        self._known: OrderedDict[str, str] = OrderedDict()  # token -> cart id, valid ones only

    def _sign(self, key: bytes, cart_id: str) -> str:
        return _b64(hmac.new(key, f"{_TOKEN_VERSION}.{cart_id}".encode(), hashlib.sha256).digest())

    def new_cart(self) -> tuple[str, str]:
        """A fresh guest cart id (random, 128 bits) and its token."""
        cart_id = random_uuid()
        token = self.issue(cart_id)
        self._remember(token, cart_id)
        return cart_id, token

    def issue(self, cart_id: str) -> str:
        return f"{_TOKEN_VERSION}.{cart_id}.{self._sign(self._keys[0], cart_id)}"

    def verify(self, token: str) -> str:
        """The cart id the token names; InvalidCartToken if forged, altered or malformed."""
        known = self._known.get(token)
        if known is not None:
            return known
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _TOKEN_VERSION or len(token) > 200:
            raise InvalidCartToken("The cart token is malformed")
        cart_id, signature = parts[1], parts[2]
        try:
            uuid.UUID(cart_id)
        except ValueError:
            raise InvalidCartToken("The cart token is malformed") from None
        for key in self._keys:
            if hmac.compare_digest(self._sign(key, cart_id), signature):
                self._remember(token, cart_id)
                return cart_id
        raise InvalidCartToken("The cart token's signature does not match")

    def _remember(self, token: str, cart_id: str) -> None:
        if len(self._known) >= VERIFIED_TOKENS:
            self._known.popitem(last=False)  # the oldest
        self._known[token] = cart_id


def user_cart_id(user_id: str) -> str:
    """A signed-in user's one cart, the same on every device."""
    return str(uuid.uuid5(_USER_CART_NAMESPACE, user_id))


class UserTokens:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def verify(self, token: str) -> str:
        """The user id (``sub``) of a valid HS256 JWT with an expiry."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
                leeway=JWT_LEEWAY_SECONDS,
            )
        except jwt.PyJWTError as exc:
            raise InvalidUserToken(f"The bearer token is not valid: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not 1 <= len(sub) <= 200:
            raise InvalidUserToken("The bearer token's subject is not valid")
        return sub

    def issue(self, user_id: str, ttl_seconds: int = 3600) -> str:
        """For tests and the load tool: the platform's identity service issues real ones."""
        import time

        now = int(time.time())
        return jwt.encode({"sub": user_id, "iat": now, "exp": now + ttl_seconds}, self._secret, "HS256")


def check_admin_key(expected: str, given: str | None) -> None:
    if not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Unauthorized("A valid X-Admin-Key header is required")


def key_matches(expected: str | bytes | None, given: str | bytes | None) -> bool:
    """A shared key (X-Service-Key, X-Admin-Key) compared in constant time; never equal
    when no key is configured."""
    if not expected or not given:
        return False
    expected = expected.encode() if isinstance(expected, str) else expected
    given = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(expected, given)
