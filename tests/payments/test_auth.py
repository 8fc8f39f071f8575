"""Only SePay's deliveries are stored: the API key or the HMAC signature SEPAY_AUTH names,
both checked before anything is read; a refusal is 401 and stores nothing."""

from __future__ import annotations

import time

import msgspec
import pytest

from service.payments.auth import apikey_problem, hmac_problem, signature
from tests.api import api_client
from tests.hardening.conftest import is_problem
from tests.payments.conftest import (
    HMAC_SECRET,
    apikey_headers,
    deliver,
    payments,
    sepay_settings,
    signed_headers,
    transaction,
)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Apikey wrong-key"},
        {"Authorization": "Bearer test-sepay-api-key"},
        {"Authorization": "test-sepay-api-key"},
        {"Authorization": "Apikey test-sepay-api-key-and-more"},
    ],
    ids=["missing", "wrong key", "wrong scheme", "no scheme", "longer key"],
)
async def test_api_key_mode_refuses_anything_but_the_key_and_stores_nothing(client, db_pool, headers):
    response = await deliver(client, transaction(), headers)
    assert is_problem(response, 401, "unauthorized"), response.text
    assert await payments(db_pool) == []


async def test_api_key_mode_takes_the_key_in_any_case_of_its_scheme(client, db_pool):
    for scheme in ("Apikey", "apikey", "APIKEY"):
        response = await deliver(client, transaction(), {"Authorization": f"{scheme} test-sepay-api-key"})
        assert (response.status_code, response.json()) == (200, {"success": True})
    assert len(await payments(db_pool)) == 3


async def test_hmac_mode_takes_a_fresh_signature_of_the_exact_body(settings, clean_state, db_pool):
    async with api_client(sepay_settings(settings, "hmac")) as api:
        body = msgspec.json.encode(transaction())
        good = await deliver(api, body, signed_headers(body))
        assert (good.status_code, good.json()) == (200, {"success": True})
        bare = signed_headers(body)
        bare["X-SePay-Signature"] = bare["X-SePay-Signature"].removeprefix("sha256=").upper()
        other = msgspec.json.encode(transaction())
        assert (
            await deliver(api, other, {**signed_headers(other), **{"X-SePay-Signature": bare["X-SePay-Signature"]}})
        ).status_code == 401
        assert len(await payments(db_pool)) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        "missing both",
        "missing timestamp",
        "wrong secret",
        "stale",
        "future",
        "other timestamp",
        "other body",
        "api key",
    ],
)
async def test_hmac_mode_refuses_and_stores_nothing(settings, clean_state, db_pool, tamper):
    body = msgspec.json.encode(transaction())
    now = time.time()
    headers = signed_headers(body)
    send = body
    if tamper == "missing both":
        headers = {}
    elif tamper == "missing timestamp":
        del headers["X-SePay-Timestamp"]
    elif tamper == "wrong secret":
        headers = signed_headers(body, secret="whsec_other")
    elif tamper == "stale":  # a captured delivery replayed 6 minutes later, signature and all
        headers = signed_headers(body, at=now - 360)
    elif tamper == "future":
        headers = signed_headers(body, at=now + 360)
    elif tamper == "other timestamp":  # the body and signature replayed under a fresh timestamp
        headers["X-SePay-Timestamp"] = str(int(now) + 1)
    elif tamper == "other body":
        send = body.replace(b'"transferAmount":500000', b'"transferAmount":900000')
        assert send != body
    elif tamper == "api key":
        headers = apikey_headers()
    async with api_client(sepay_settings(settings, "hmac")) as api:
        response = await deliver(api, send, headers)
    assert is_problem(response, 401, "unauthorized"), response.text
    assert await payments(db_pool) == []


async def test_off_answers_404_and_stores_nothing(settings, clean_state, db_pool):
    async with api_client(sepay_settings(settings, "off")) as api:
        response = await deliver(api, transaction(), apikey_headers())
    assert is_problem(response, 404, "not-found"), response.text
    assert await payments(db_pool) == []


def test_the_checks_themselves():
    assert apikey_problem("Apikey k", "k") is None
    assert apikey_problem("Apikey  k ", "k") is None
    assert apikey_problem(None, "k") and apikey_problem("Apikey ", "k") and apikey_problem("Apikey kk", "k")
    body, ts = b'{"id":1}', "1700000000"
    good = {"x-sepay-signature": signature("s", ts, body), "x-sepay-timestamp": ts}
    assert good["x-sepay-signature"].startswith("sha256=") and len(good["x-sepay-signature"]) == 71
    assert hmac_problem(good, body, "s", 1700000000 + 300) is None
    assert hmac_problem(good, body, "s", 1700000000 + 301) is not None
    assert hmac_problem(good, body, "s", 1700000000 - 301) is not None
    assert hmac_problem({**good, "x-sepay-timestamp": "17e8"}, body, "s", 1700000000) is not None
    assert hmac_problem(good, body + b" ", "s", 1700000000) is not None
    assert hmac_problem(good, body, HMAC_SECRET, 1700000000) is not None


async def test_a_key_is_rotated_by_naming_both_for_a_while(settings, clean_state, db_pool):
    rotating = sepay_settings(settings, sepay_api_key="old-key, new-key", sepay_hmac_secret="whsec_old,whsec_new")
    async with api_client(rotating) as api:
        for key in ("old-key", "new-key"):
            response = await deliver(api, transaction(), apikey_headers(key))
            assert response.status_code == 200, key
        assert is_problem(await deliver(api, transaction(), apikey_headers("other-key")), 401, "unauthorized")
        assert is_problem(await deliver(api, transaction(), apikey_headers("old-key, new-key")), 401, "unauthorized")
    async with api_client(msgspec.structs.replace(rotating, sepay_auth="hmac")) as api:
        for secret in ("whsec_old", "whsec_new"):
            body = msgspec.json.encode(transaction())
            assert (await deliver(api, body, signed_headers(body, secret=secret))).status_code == 200, secret
        body = msgspec.json.encode(transaction())
        refused = await deliver(api, body, signed_headers(body, secret="whsec_other"))
        assert is_problem(refused, 401, "unauthorized")
    assert len(await payments(db_pool)) == 4


async def test_no_sepay_secret_reaches_a_log_line_or_the_stored_headers(settings, clean_state, db_pool):
    import logging

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record) + repr(record.__dict__))

    handler = Keep(logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger("ticket_cart")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        async with api_client(sepay_settings(settings)) as api:
            await deliver(api, transaction())
            await deliver(api, transaction(), apikey_headers("test-sepay-api-key-wrong"))
        async with api_client(sepay_settings(settings, "hmac")) as api:
            body = msgspec.json.encode(transaction())
            await deliver(api, body, signed_headers(body))
            await deliver(api, body, signed_headers(body, at=time.time() - 3600))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
    assert records, "nothing was logged: the test hears nothing"
    for secret in ("test-sepay-api-key", HMAC_SECRET):
        assert not [r for r in records if secret in r], secret
    stored = await db_pool.fetch("SELECT headers::text AS h FROM payments")
    assert len(stored) == 2 and not [r for r in stored if "test-sepay-api-key" in r["h"] or "authorization" in r["h"]]
