"""Who may do what: cart-token key rotation, JWT checks pinned to HS256 with exp and sub,
shared keys compared in constant time, and no secret or credential ever in a log line."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import jwt
import msgspec
import pytest

from service import auth
from service.auth import JWT_LEEWAY_SECONDS, CartTokens, UserTokens
from service.errors import InvalidCartToken, InvalidUserToken
from tests.api import put_tier
from tests.hardening.conftest import is_problem

SECRET = "jwt-secret-of-the-hardening-tests-" + "0123456789" * 3  # 64 bytes: HS512's own minimum (RFC 7518)
OTHER_SECRET = "another-secret-of-the-same-length-" + "0" * 30


def _b64(data: dict | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**changes) -> dict:
    now = int(time.time())
    base = {"sub": "user-1", "iat": now, "exp": now + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


# -- cart tokens: rotation ---------------------------------------------------------------------


def test_a_rotated_key_still_verifies_old_tokens_and_new_ones_are_signed_with_the_first():
    old = CartTokens(("old-key",))
    cart_id, old_token = old.new_cart()
    rotated = CartTokens(("new-key", "old-key"))
    assert rotated.verify(old_token) == cart_id
    new_token = rotated.issue(cart_id)
    assert new_token != old_token
    assert CartTokens(("new-key",)).verify(new_token) == cart_id
    with pytest.raises(InvalidCartToken):
        old.verify(new_token)
    with pytest.raises(InvalidCartToken):  # the old key retired: its tokens stop working
        CartTokens(("new-key",)).verify(old_token)


def test_a_remembered_token_spares_the_check_but_an_altered_one_is_still_refused(monkeypatch):
    tokens = CartTokens(("key",))
    cart_id, token = tokens.new_cart()
    assert uuid.UUID(cart_id).version == 4 and str(uuid.UUID(cart_id)) == cart_id
    other_id = str(uuid.uuid4())
    other = CartTokens(("key",)).issue(other_id)  # valid, but not issued by ``tokens``
    signed = []
    real_sign = CartTokens._sign
    monkeypatch.setattr(CartTokens, "_sign", lambda self, key, cid: signed.append(cid) or real_sign(self, key, cid))
    assert tokens.verify(token) == cart_id and signed == []  # issued here: remembered
    assert tokens.verify(other) == other_id and tokens.verify(other) == other_id
    assert signed == [other_id]  # checked once, then remembered
    for altered in (token[:-1] + ("A" if token[-1] != "A" else "B"), f"v1.{other_id}.{token.split('.')[2]}"):
        for _ in range(2):  # a refusal is never remembered
            with pytest.raises(InvalidCartToken):
                tokens.verify(altered)
    with pytest.raises(InvalidCartToken):
        CartTokens(("another-key",)).verify(token)  # what one instance remembers, another does not
    monkeypatch.setattr(auth, "VERIFIED_TOKENS", 3)
    small = CartTokens(("key",))
    issued = [small.new_cart() for _ in range(5)]
    assert len(small._known) == 3 and list(small._known) == [t for _, t in issued[2:]]  # the oldest went first
    assert all(small.verify(t) == c for c, t in issued)


@pytest.mark.usefixtures("clean_state")
async def test_rotation_through_the_api_keeps_the_buyers_cart(api_with):
    async with api_with(cart_token_secrets=("old-key",)) as api:
        tier = await put_tier(api)
        added = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 2})
        old_token = added.headers["x-cart-token"]
    async with api_with(cart_token_secrets=("new-key", "old-key")) as api:
        api.cookies.clear()
        cart = await api.get("/api/cart", headers={"X-Cart-Token": old_token})
        assert cart.status_code == 200 and cart.json()["item_count"] == 2
        api.cookies.clear()
        fresh = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
        assert CartTokens(("new-key",)).verify(fresh.headers["x-cart-token"])
    async with api_with(cart_token_secrets=("new-key",)) as api:
        api.cookies.clear()
        assert is_problem(await api.get("/api/cart", headers={"X-Cart-Token": old_token}), 401, "invalid-cart-token")


# -- user JWTs: pinned checks ----------------------------------------------------------------


def test_a_valid_hs256_token_names_its_subject():
    assert UserTokens(SECRET).verify(jwt.encode(claims(), SECRET, "HS256")) == "user-1"


@pytest.mark.parametrize(
    "token_of",
    [
        pytest.param(lambda: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}.", id="alg-none"),
        pytest.param(lambda: f"{_b64({'alg': 'none'})}.{_b64(claims())}.{_b64(b'sig')}", id="alg-none-with-signature"),
        pytest.param(lambda: jwt.encode(claims(), SECRET, "HS512"), id="hs512-same-secret"),
        pytest.param(lambda: jwt.encode(claims(), SECRET, "HS384"), id="hs384-same-secret"),
        # RS/HS confusion: an RS256 header over an HMAC made with the secret as if it were a public key.
        pytest.param(lambda: _resign(jwt.encode(claims(), SECRET, "HS256"), "RS256"), id="rs256-header-hmac-body"),
        pytest.param(lambda: jwt.encode(claims(), OTHER_SECRET, "HS256"), id="wrong-key"),
        pytest.param(lambda: jwt.encode(claims(exp=None), SECRET, "HS256"), id="no-exp"),
        pytest.param(lambda: jwt.encode(claims(sub=None), SECRET, "HS256"), id="no-sub"),
        pytest.param(lambda: jwt.encode(claims(sub=""), SECRET, "HS256"), id="empty-sub"),
        pytest.param(lambda: jwt.encode(claims(sub="x" * 201), SECRET, "HS256"), id="huge-sub"),
        pytest.param(
            lambda: jwt.encode(claims(exp=int(time.time()) - JWT_LEEWAY_SECONDS - 5), SECRET, "HS256"),
            id="expired-past-leeway",
        ),
        pytest.param(
            lambda: jwt.encode(claims(nbf=int(time.time()) + JWT_LEEWAY_SECONDS + 60), SECRET, "HS256"),
            id="not-yet-valid",
        ),
        pytest.param(lambda: _altered(jwt.encode(claims(), SECRET, "HS256")), id="altered-signature"),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
    ],
)
def test_refused_bearer_tokens(token_of):
    with pytest.raises(InvalidUserToken):
        UserTokens(SECRET).verify(token_of())


def _altered(token: str) -> str:
    """The token with its signature's first character changed (the last ones carry padding
    bits: replacing them could leave the signature as it was)."""
    head, _, signature = token.rpartition(".")
    return f"{head}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


def _resign(token: str, alg: str) -> str:
    _header, body, signature = token.split(".")
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{body}.{signature}"


def test_the_leeway_is_small_and_honoured():
    assert JWT_LEEWAY_SECONDS <= 60
    just_expired = jwt.encode(claims(exp=int(time.time()) - JWT_LEEWAY_SECONDS // 2), SECRET, "HS256")
    assert UserTokens(SECRET).verify(just_expired) == "user-1"


@pytest.mark.usefixtures("clean_state")
async def test_an_alg_none_token_is_a_401_problem_through_the_api(api_with):
    forged = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims())}."
    async with api_with() as api:
        response = await api.get("/api/cart", headers={"Authorization": f"Bearer {forged}"})
        assert is_problem(response, 401, "invalid-token")
        orders = await api.get("/api/orders", headers={"Authorization": f"Bearer {forged}"})
        assert is_problem(orders, 401, "invalid-token")


# -- shared keys: constant time --------------------------------------------------------------------


@pytest.mark.usefixtures("clean_state")
async def test_the_admin_and_service_keys_are_compared_in_constant_time(api_with, monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    async with api_with(rate_limit_per_minute=60, trusted_service_key="service-key") as api:
        await api.get("/api/admin/tiers/00000000-0000-0000-0000-000000000000", headers={"X-Admin-Key": "guess"})
        await api.get("/api/cart", headers={"X-Service-Key": "guess-2"})
    assert (b"test-admin-key", b"guess") in compared
    assert (b"service-key", b"guess-2") in compared


# -- nothing secret in the logs ------------------------------------------------------------------------


@pytest.mark.usefixtures("clean_state")
async def test_no_secret_or_credential_reaches_a_log_line(api_with):
    secrets = {
        "admin": "admin-key-MUST-NOT-BE-LOGGED",
        "cart": "cart-secret-MUST-NOT-BE-LOGGED",
        "jwt": "jwt-secret-MUST-NOT-BE-LOGGED-0123456789",
        "service": "service-key-MUST-NOT-BE-LOGGED",
    }
    credentials: list[str] = list(secrets.values())
    async with api_with(
        admin_api_key=secrets["admin"],
        cart_token_secrets=(secrets["cart"],),
        jwt_secret=secrets["jwt"],
        trusted_service_key=secrets["service"],
        rate_limit_per_minute=60,
        promo_attempts_per_minute=2,
    ) as api:
        with captured_logs() as records:
            await _exercise(api, secrets, credentials)
    server_lines = [r for r in records if not r.name.startswith(("httpx", "httpcore"))]
    assert server_lines, "the run logged nothing: the test would prove nothing"
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in server_lines)
    leaked = [c for c in credentials if c in text or c[:-1] in text]
    assert not leaked, leaked


async def _exercise(api, secrets: dict[str, str], credentials: list[str]) -> None:
    """Requests that carry every kind of credential, rightly and wrongly; adds the ones made."""
    admin = {"X-Admin-Key": secrets["admin"]}
    tier = (
        await api.put(
            f"/api/admin/tiers/{_uuid(1)}",
            headers=admin,
            json={
                "event_id": _uuid(2),
                "name": "GA",
                "price": 1000,
                "currency": "VND",
                "quantity_total": 10,
                "max_per_order": 5,
            },
        )
    ).json()
    added = await api.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": 1})
    token = added.headers["x-cart-token"]
    user_jwt = UserTokens(secrets["jwt"]).issue("user-logged")
    credentials += [token, user_jwt]
    api.cookies.clear()
    cart = {"X-Cart-Token": token}
    for code in ("NOPE1", "NOPE2", "NOPE3"):  # refused, then rate limited: both logged
        await api.post("/api/cart/promo", json={"code": code}, headers=cart)
    order = await api.post("/api/orders", json={"email": "buyer@example.com"}, headers=cart)
    assert order.status_code == 201, order.text
    access = order.json()["access_token"]
    credentials.append(access)
    await api.get(f"/api/orders/{order.json()['id']}", headers={"X-Order-Token": access})
    await api.get(f"/api/orders/{order.json()['id']}", headers={"X-Order-Token": access[:-1]})
    await api.get("/api/cart", headers={"Authorization": f"Bearer {user_jwt}"})
    await api.get("/api/cart", headers={"Authorization": f"Bearer {user_jwt}x"})
    await api.get("/api/cart", headers={"X-Cart-Token": token + "x"})
    await api.get("/api/admin/tiers/" + tier["id"], headers={"X-Admin-Key": secrets["admin"][:-1]})
    await api.get("/api/cart", headers={"X-Service-Key": secrets["service"]})


@contextmanager
def captured_logs() -> Iterator[list[logging.LogRecord]]:
    """Every record at DEBUG and above, from the root logger and the two that do not propagate
    to it (Litestar's, and ticket_cart's: service/logs.py writes its lines once); attached once
    the app has configured logging, which replaces root handlers."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append
    loggers = [logging.getLogger(), logging.getLogger("litestar"), logging.getLogger("ticket_cart")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_settings_never_show_their_secrets(settings):
    shown = msgspec.structs.replace(
        settings,
        trusted_service_key="service-key-MUST-NOT-SHOW",
        redis_url="redis://:redis-pass-MUST-NOT-SHOW@127.0.0.1:6379/0",
        database_url="postgresql://app:pg-pass-MUST-NOT-SHOW@db:5432/tc",
    )
    text = repr(shown) + str(shown) + f"{shown}"
    for secret in (
        shown.admin_api_key,
        shown.jwt_secret,
        "service-key-MUST-NOT-SHOW",
        *shown.cart_token_secrets,
        "redis-pass-MUST-NOT-SHOW",
        "pg-pass-MUST-NOT-SHOW",
    ):
        assert secret not in text
    assert "postgresql://app:<secret>@db:5432/tc" in text and "reservation_ttl_seconds=" in text


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"
