"""The codes an order carries: its human number, its payment code, its tickets' codes, and
the guest's access token. Pure functions, no I/O; uniqueness is PostgreSQL's (unique
indexes), and the checkout draws again on a clash.

Codes people read or type use an alphabet without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S,
8/B). Codes that only machines read (tickets, tokens) are simply long and random.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# 25 symbols: digits and capitals that cannot be mistaken for one another.
ALPHABET = "34679ACDEFGHJKMNPQRTUVWXY"
PAYMENT_PREFIX = "TC"
PAYMENT_RANDOM_LENGTH = 8
# Weights of the payment code's check sum (mod 25), its check symbol last. Each is coprime
# with 25 and so is the difference of any two neighbours, so every single mistyped symbol
# and every swap of two neighbouring symbols changes the sum: both are always detected.
_WEIGHTS = (1, 2, 3, 4, 6, 7, 8, 9, 11)
_INVERSE_OF_CHECK_WEIGHT = 16  # 11 * 16 = 176 = 1 (mod 25)
_VALUE = {symbol: i for i, symbol in enumerate(ALPHABET)}


def _random_symbols(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def _check_symbol(body: str) -> str:
    # One weight more than the body has symbols: the last is the check symbol's.
    total = sum(w * _VALUE[c] for w, c in zip(_WEIGHTS, body, strict=False))
    return ALPHABET[(-total * _INVERSE_OF_CHECK_WEIGHT) % len(ALPHABET)]


def new_payment_code() -> str:
    """What the buyer writes on the bank transfer: "TC", 8 random symbols, 1 check symbol
    (about 37 bits of randomness; the unique index and a redraw handle clashes)."""
    body = _random_symbols(PAYMENT_RANDOM_LENGTH)
    return PAYMENT_PREFIX + body + _check_symbol(body)


def normalize_payment_code(raw: str) -> str:
    """A payment code as a person may have typed it (lower case, spaces, dashes) -> canonical."""
    return "".join(c for c in raw.upper() if c not in " -_\t")


def payment_code_is_valid(raw: str) -> bool:
    """True if the code is well formed and its check symbol matches (a typo is caught here,
    before any look-up)."""
    code = normalize_payment_code(raw)
    length = len(PAYMENT_PREFIX) + PAYMENT_RANDOM_LENGTH + 1
    if len(code) != length or not code.startswith(PAYMENT_PREFIX):
        return False
    body, check = code[len(PAYMENT_PREFIX) : -1], code[-1]
    if any(c not in _VALUE for c in body + check):
        return False
    return _check_symbol(body) == check


def new_order_number() -> str:
    """The number people quote to support, e.g. TC-7KQ4-MX9W (about 37 bits)."""
    symbols = _random_symbols(8)
    return f"TC-{symbols[:4]}-{symbols[4:]}"


def new_ticket_code() -> str:
    """Printed on the ticket (and its QR code): 120 random bits, 24 base32 symbols."""
    return base64.b32encode(secrets.token_bytes(15)).decode()


def order_access_token(key: str, order_id: str) -> str:
    """A guest's token for reading their order: an HMAC of the order id under the server's
    key, so the server can hand it again to the cart that made the order without storing
    it; the order keeps only its sha256 (``access_token_hash``)."""
    mac = hmac.new(key.encode(), f"order-access.v1.{order_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def access_token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def access_token_matches(token: str | None, stored_hash: bytes | None) -> bool:
    if not token or not stored_hash or len(token) > 200:
        return False
    return hmac.compare_digest(access_token_hash(token), bytes(stored_hash))
