"""The storefront in a real browser: Debian's chromium driven by Playwright's async API
(no browser of Playwright's own, no pytest-playwright plugin), against the service in a real
uvicorn process (tests/live_server.py) on the root ``settings``, so these tests run in both
passes of ``make test`` (standalone Redis and Redis Cluster).

Each test gets a fresh browser context (its own cookies, storage and tabs) that records every
console error and uncaught exception of its pages, and makes the tiers it needs through the
admin API under a new event id: tests share the server, never a cart or a tier.

A missing chromium or Playwright fails the test under CI (``CI`` set) and skips it elsewhere,
saying how to install it (``make test-tools``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from devtools import PROJECT_ROOT
from service.clock import now_ms
from service.keys import Keys
from tests.api import ADMIN_HEADERS, put_tier
from tests.live_server import LiveServer, live_server
from tests.suite_policy import folder_standalone_only, under_ci

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package chromium
CHROMIUM_ARGS = [
    "--no-sandbox",  # as root (CI, containers)
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",  # no background lookups
]
# Where the tests write a screenshot of each page; docs/storefront/ holds the current ones.
SCREENSHOTS = PROJECT_ROOT / "build" / "storefront-screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# What chromium logs for a fetch the server refused (a 409 the page shows as a message).
REFUSED_FETCH = re.compile(r"^Failed to load resource: the server responded with a status of (\d{3})")


def _missing(what: str) -> None:
    message = f"{what} (Debian package chromium, Python package playwright): run `make test-tools` and `make venv`"
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is not installed")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright is not installed")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Shop:
    """The live service, and how a test sets up its catalogue."""

    server: LiveServer
    settings: Any

    @property
    def url(self) -> str:
        return self.server.base_url

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=10)

    async def event(self, *tiers: dict[str, Any]) -> Event:
        """A new event with these tiers (``put_tier``'s fields: name, price, quantity_total, ...)."""
        event_id = str(uuid.uuid4())
        made = {}
        async with self.client() as client:
            for fields in tiers:
                tier = await put_tier(client, event_id=event_id, **fields)
                made[tier["name"]] = tier["id"]
        return Event(event_id, made)

    async def promo(self, **definition: Any) -> None:
        async with self.client() as client:
            response = await client.post("/api/admin/promo-codes", json=definition, headers=ADMIN_HEADERS)
        assert response.status_code in (200, 201), response.text

    async def order(self, order_id: str, token: str) -> dict[str, Any]:
        async with self.client() as client:
            response = await client.get(f"/api/orders/{order_id}", headers={"X-Order-Token": token})
        assert response.status_code == 200, response.text
        return response.json()


@dataclass
class Event:
    id: str
    tiers: dict[str, str]  # name -> tier id

    @property
    def path(self) -> str:
        return f"/events/{self.id}"


@pytest.fixture(scope="package")
def shop(settings) -> Iterator[Shop]:
    with live_server(settings) as server:
        yield Shop(server, settings)


@dataclass
class Browsing:
    """A browser context of one test: its pages' console errors and uncaught exceptions."""

    context: Any
    shop: Shop
    errors: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # statuses of fetches the server refused

    async def page(self, path: str | None = None) -> Any:
        page = await self.context.new_page()
        if path is not None:
            await page.goto(self.shop.url + path)
        return page

    def watch(self, page: Any) -> None:
        def on_console(message: Any) -> None:
            if message.type != "error":
                return
            refused = REFUSED_FETCH.match(message.text)
            if refused:
                self.refused.append(int(refused.group(1)))
            else:
                self.errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: uncaught {error}"))

    def assert_clean(self, *refusals: int) -> None:
        """No console error, no uncaught exception; no refused fetch but those expected."""
        assert self.errors == []
        assert sorted(set(self.refused)) == sorted(set(refusals)), self.refused

    async def cart_id(self) -> str:
        """The guest cart's id, from its cookie (v1.<cart id>.<signature>)."""
        (token,) = [c["value"] for c in await self.context.cookies() if c["name"] == "cart_token"]
        return token.split(".")[1]


async def new_browsing(browser: Any, shop: Shop, **options: Any) -> Browsing:
    context = await browser.new_context(
        **{"viewport": DESKTOP, "locale": "vi-VN", "timezone_id": "Asia/Ho_Chi_Minh", **options}
    )
    browsing = Browsing(context, shop)
    context.on("page", browsing.watch)
    return browsing


@pytest_asyncio.fixture(loop_scope="session")
async def browsing(browser, shop) -> AsyncIterator[Browsing]:
    browsing = await new_browsing(browser, shop)
    try:
        yield browsing
    finally:
        await browsing.context.close()


async def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    return path


async def expire_holds(redis: Any, settings: Any, event_id: str, cart_id: str) -> None:
    """The server's hold of the cart's part in the event runs out now, as if its 15 minutes
    had passed on the server too (the browser's clock is Playwright's; the server's is real)."""
    keys = Keys(settings.key_prefix).event(event_id)
    part = json.loads(await redis.hget(keys.carts, cart_id))
    part["x"] = now_ms() - 1000
    await redis.hset(keys.carts, cart_id, json.dumps(part))
    await redis.zadd(keys.expiries, {cart_id: part["x"]})


def in_days(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat()


# The cluster pass (tests/suite_policy.py) leaves the browser out: a page does what the API
# answers, and every route it calls runs on the Redis Cluster in tests/cart, tests/orders and
# tests/promo; nothing a browser adds depends on Redis's topology. Saves about 20 s of CI.
ON_STANDALONE_ONLY = (
    "the pages call the API, whose routes run on the cluster in tests/cart, tests/orders and tests/promo; "
    "a browser adds nothing that depends on Redis's topology"
)


pytest_collection_modifyitems = folder_standalone_only(__file__, ON_STANDALONE_ONLY)
