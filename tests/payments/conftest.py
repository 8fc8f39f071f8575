"""Fixtures of the payment tests: the app with SePay on (API key or HMAC), the services it
runs on, and short ways to buy an order and send SePay's deliveries."""

from __future__ import annotations

import datetime as dt
import itertools
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest_asyncio

from service.payments.auth import signature
from service.payments.payload import VIETNAM
from service.wiring import Services
from tests.api import api_client, put_tier, running_services
from tests.suite_policy import folder_standalone_only

SEPAY_KEY = "test-sepay-api-key"
HMAC_SECRET = "whsec_test-sepay-hmac-secret"
ACCOUNT = "0123499999"
_IDS = itertools.count(int(time.time() * 1000) % 10**9 * 1000)


def sepay_settings(settings, mode: str = "apikey", **changes):
    fields = {
        "sepay_auth": mode,
        "sepay_api_key": SEPAY_KEY,
        "sepay_hmac_secret": HMAC_SECRET,
        "payment_account_number": ACCOUNT,
    }
    return msgspec.structs.replace(settings, **(fields | changes))


@pytest_asyncio.fixture(loop_scope="session")
async def client(settings, clean_state):
    """The app in process with SePay on, API-key mode, and our account configured."""
    async with api_client(sepay_settings(settings)) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def services(settings, db_pool, clean_state) -> AsyncIterator[Services]:
    async with running_services(sepay_settings(settings), db_pool) as built:
        yield built


def vietnam_time(when: dt.datetime | None = None) -> str:
    """A transactionDate as SePay writes it: Vietnam's wall clock, no offset."""
    return (when or dt.datetime.now(dt.UTC)).astimezone(VIETNAM).strftime("%Y-%m-%d %H:%M:%S")


def transaction(code: str | None = None, amount: int = 500_000, **fields: Any) -> dict[str, Any]:
    """A SePay transaction (the documented example's fields), a fresh id each time."""
    return {
        "id": next(_IDS),
        "gateway": "Vietcombank",
        "transactionDate": vietnam_time(),
        "accountNumber": ACCOUNT,
        "code": code,
        "content": f"{code or ''} chuyen tien",
        "transferType": "in",
        "transferAmount": amount,
        "accumulated": 19_077_000,
        "subAccount": None,
        "referenceCode": "MBVCB.3278907687",
        "description": f"BankAPINotify {code or ''} chuyen tien",
        **fields,
    }


def apikey_headers(key: str = SEPAY_KEY) -> dict[str, str]:
    return {"Authorization": f"Apikey {key}", "Content-Type": "application/json"}


def signed_headers(body: bytes, *, at: float | None = None, secret: str = HMAC_SECRET) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    return {
        "X-SePay-Timestamp": timestamp,
        "X-SePay-Signature": signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


async def deliver(client, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None):
    raw = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return await client.post(
        "/api/payments/sepay", content=raw, headers=apikey_headers() if headers is None else headers
    )


async def buy(client, *, price: int = 500_000, quantity: int = 1, total: int = 10, currency: str = "VND") -> dict:
    """A new tier and a guest's order of ``quantity`` of its seats: the order."""
    tier = await put_tier(client, price=price, quantity_total=total, currency=currency)
    client.cookies.clear()
    added = await client.post("/api/cart/items", json={"tier_id": tier["id"], "quantity": quantity})
    assert added.status_code == 201, added.text
    client.cookies.clear()
    ordered = await client.post(
        "/api/orders", json={"email": "buyer@example.com"}, headers={"X-Cart-Token": added.headers["x-cart-token"]}
    )
    assert ordered.status_code == 201, ordered.text
    return {**ordered.json(), "tier_id": tier["id"]}


async def payments(db_pool) -> list[dict[str, Any]]:
    rows = await db_pool.fetch(
        "SELECT id, sepay_id, status, reason, order_id, amount, payment_code, detail FROM payments"
        " ORDER BY received_at, id"
    )
    return [dict(row) for row in rows]


async def order_status(db_pool, order: dict) -> str:
    return await db_pool.fetchval("SELECT status FROM orders WHERE id = $1", uuid.UUID(order["id"]))


async def review_events(db_pool) -> list[dict[str, Any]]:
    rows = await db_pool.fetch(
        "SELECT order_id, payload FROM order_events WHERE kind = 'payment.needs_review' ORDER BY seq"
    )
    return [{"order_id": row["order_id"], **msgspec.json.decode(row["payload"])} for row in rows]


# The cluster pass (tests/suite_policy.py) leaves these out: a SePay delivery is one
# PostgreSQL transaction, and its one Redis step (the sold changes of a late payment that
# revives an order) is mark-paid's, which tests/orders/test_lifecycle.py runs on the cluster.
ON_STANDALONE_ONLY = (
    "a SePay delivery is a PostgreSQL transaction; its one Redis step, installing a revived order's sold "
    "changes, is mark-paid's, run on the cluster by tests/orders/test_lifecycle.py"
)


pytest_collection_modifyitems = folder_standalone_only(__file__, ON_STANDALONE_ONLY)
