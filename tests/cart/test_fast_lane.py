"""The fast lane (service.http.fastlane) answers exactly as the Litestar handlers do.

The same requests go to two apps on the same servers, one with the fast lane and one
without, each on its own tiers of the same definition; the answers must match once the
ids, tokens and times that are bound to differ are masked.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.cart import handlers
from tests.api import bearer, put_tier

pytestmark = pytest.mark.usefixtures("clean_state")

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TOKEN = re.compile(r"v1\.[A-Za-z0-9_\-.]+")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z")
_VARYING = {"date", "x-request-id", "content-length"}


@asynccontextmanager
async def client(settings, fast: bool) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(settings, fast_lane=fast)) as api:
        yield api


def masked(response) -> tuple:
    """What must match: status, header names and values, body; varying values masked."""

    def mask(text: str) -> str:
        return _TIME.sub("<time>", _UUID.sub("<uuid>", _TOKEN.sub("<token>", text)))

    headers = sorted((name, mask(value)) for name, value in response.headers.multi_items() if name not in _VARYING)
    assert int(response.headers["content-length"]) == len(response.content)
    return response.status_code, headers, mask(response.text)


async def _script(api: AsyncTestClient, settings) -> list:
    """Every kind of cart request, good and bad; the answers in order."""
    tier = (await put_tier(api, quantity_total=10, max_per_order=4))["id"]
    answers = []

    async def call(method: str, path: str, **kwargs) -> None:
        api.cookies.clear()
        answers.append((method, path, masked(await api.request(method, path, **kwargs))))

    new = await api.post("/api/cart/items", json={"tier_id": tier, "quantity": 1})
    answers.append(("POST", "new cart", masked(new)))
    token = {"X-Cart-Token": new.headers["x-cart-token"]}
    items = "/api/cart/items"
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers=token)
    await call(
        "POST",
        items,
        json={"tier_id": tier, "quantity": 1},
        headers={"Cookie": f"cart_token={new.headers['x-cart-token']}"},
    )
    await call("POST", items, json={"tier_id": tier, "quantity": 9}, headers=token)  # over max_per_order
    await call("POST", items, json={"tier_id": str(uuid.uuid4()), "quantity": 1}, headers=token)  # unknown tier
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers={**token, "Idempotency-Key": "k1"})
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers={**token, "Idempotency-Key": "k1"})
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers={**token, "Idempotency-Key": "k" * 201})
    for bad in (
        b"",
        b"{",
        b"[]",
        b"{}",
        b'{"tier_id": "x", "quantity": 1}',
        b'{"tier_id": "%s"}' % tier.encode(),
        b'{"tier_id": "%s", "quantity": 0}' % tier.encode(),
        b'{"tier_id": "%s", "quantity": 1, "extra": 1}' % tier.encode(),
    ):
        await call("POST", items, content=bad, headers={**token, "content-type": "application/json"})
    await call("POST", items, content=b'{"tier_id": "%s", "quantity": "1"}' % tier.encode(), headers=token)
    await call("POST", items, content=b'{"tier_id": "%s", "quantity": 1}' % tier.encode())  # no content-type
    await call("POST", items, content=b" " * (17 * 1024), headers={"content-type": "application/json"})
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers={"X-Cart-Token": "v1.forged.x"})
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers={"Authorization": "Basic x"})
    await call("POST", items, json={"tier_id": tier, "quantity": 1}, headers=bearer(settings, str(uuid.uuid4())))
    await call("GET", "/api/cart", headers=token)
    await call("GET", "/api/cart")
    await call("GET", "/api/cart", headers={"X-Cart-Token": "nonsense"})
    await call("PUT", f"{items}/{tier}", json={"quantity": 3}, headers=token)
    await call("PUT", f"{items}/{tier}", json={"quantity": -1}, headers=token)
    await call("PUT", f"{items}/not-a-uuid", json={"quantity": 1}, headers=token)
    await call("PUT", f"{items}/{tier}", json={"quantity": 2})  # a new cart, status 200
    await call("PUT", f"{items}/{tier}", json={"quantity": 0})  # no cart: the empty one
    await call("GET", f"/api/tiers/{tier}/availability")
    await call("GET", f"/api/tiers/{uuid.uuid4()}/availability")
    await call("GET", "/api/tiers/nope/availability")
    await call("DELETE", f"{items}/not-a-uuid", headers=token)
    await call("DELETE", f"{items}/{tier}", headers=token)
    await call("DELETE", f"{items}/{tier}")
    await call("DELETE", "/api/cart", headers=token)
    await call("DELETE", "/api/cart")
    await call("PATCH", items, json={})
    return answers


async def test_the_fast_lane_answers_as_the_handlers_do(settings):
    async with client(settings, fast=True) as fast, client(settings, fast=False) as slow:
        fast_answers = await _script(fast, settings)
        slow_answers = await _script(slow, settings)
    assert len(fast_answers) == len(slow_answers)
    for (method, path, got), (_, _, expected) in zip(fast_answers, slow_answers, strict=True):
        assert got == expected, f"{method} {path}"


async def test_well_formed_requests_skip_the_handler_and_others_reach_it(settings, monkeypatch):
    calls = []
    real = handlers._response
    monkeypatch.setattr(handlers, "_response", lambda answer: calls.append(answer) or real(answer))
    async with client(settings, fast=True) as api:
        tier = (await put_tier(api))["id"]
        added = await api.post("/api/cart/items", json={"tier_id": tier, "quantity": 1})
        await api.get("/api/cart")
        await api.get(f"/api/tiers/{tier}/availability")
        assert added.status_code == 201 and calls == []
        # The fast lane passes on a body it does not take; Litestar's side answers it, and refuses
        # what only a lenient conversion would take ("2"): a body is taken as the document types it.
        lenient = await api.post("/api/cart/items", content=b'{"tier_id": "%s", "quantity": "2"}' % tier.encode())
        assert lenient.status_code == 422 and lenient.json()["field"] == "quantity" and calls == []
